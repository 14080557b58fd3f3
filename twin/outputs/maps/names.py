"""Names the map gives firms: a firm's own name rather than its site's, and the district a point lies in."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import shapely

SITE_SUFFIX = re.compile(r"(\s*[(（][^()（）]*[)）]|\s+HQ|总部)+\s*$")
"""What anchors.geojson adds to a firm's name to name its site ("(义桥地块)", "(Yiqiao land parcel)", "HQ"):
the firm list names the firm."""


def firm_name(site: str) -> str:
    """A firm's name from its anchor's site name, without the site's suffix (never emptied by it)."""
    return SITE_SUFFIX.sub("", site) or site


def district_of(lon: np.ndarray, lat: np.ndarray, districts: gpd.GeoDataFrame) -> np.ndarray:
    """The position in ``districts`` of the district holding each point, -1 for none."""
    points = shapely.points(lon, lat)
    found = np.full(len(points), -1)
    for i, geometry in enumerate(districts.geometry):
        found[(found < 0) & shapely.contains(geometry, points)] = i
    return found
