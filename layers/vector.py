"""Reading one vector layer and proving it fit to use.

Every shipped or user file passes through :func:`read_layer`, so a file with no
CRS, a broken polygon or an empty layer is stopped here with a message that
names the file, rather than surfacing later as a wrong map.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from .errors import InputError, require_file

WGS84 = "EPSG:4326"
"""Vectors are stored and shown in WGS-84 (docs/sources.md#s-design)."""

POLYGON = ("Polygon", "MultiPolygon")
POINT = ("Point",)
LINE = ("LineString", "MultiLineString")


def read_layer(
    path: str | os.PathLike[str],
    *,
    geometry: tuple[str, ...],
    columns: Iterable[str] = (),
    repair: bool = False,
) -> gpd.GeoDataFrame:
    """Read a vector file, validate it and return it in WGS-84.

    ``geometry`` lists the allowed geometry types and ``columns`` the attribute
    columns the caller relies on. Invalid geometries are an error unless
    ``repair`` is set, because a silently "fixed" self-intersecting zone can
    change its area, and planners should know that happened.
    """
    path = require_file(path)
    try:
        _require_one_layer(path)
        frame = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(path, "file", f"cannot be read as a vector layer ({_first_line(exc)})") from None
    if len(frame) == 0:
        raise InputError(path, "layer", "is empty: it has no features")
    if frame.crs is None:
        raise InputError(
            path, "crs", "the file has no coordinate reference system; define one (for example EPSG:4326) in QGIS or with ogr2ogr -a_srs"
        )
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise InputError(path, "columns", f"missing required column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}")
    frame = _checked_geometry(frame, path, geometry, repair)
    if frame.crs.is_geographic:
        _check_degrees(frame, path)
    frame = frame.to_crs(WGS84) if not frame.crs.equals(WGS84) else frame
    _check_degrees(frame, path)
    return frame


MAX_LISTED = 10
"""Layer names listed in the error for a file with several layers; a GeoPackage can hold thousands."""


def _require_one_layer(path: Path) -> None:
    """A file with several layers (a GeoPackage, a KML) is refused, naming them: GDAL would silently read the
    first, which may well be a decoy or a working copy, and a zone drawn from the wrong layer changes every output."""
    names = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    if len(names) > 1:
        shown = ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")
        raise InputError(path, "layers", f"holds {len(names)} layers ({shown}); a layer file must hold one. "
                                         f"Keep the one you mean: ogr2ogr one_layer.gpkg {path.name} LAYER_NAME")


def _check_degrees(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Longitudes and latitudes must be real ones; latitude 120 is a swapped (lat, lon) file."""
    west, south, east, north = frame.total_bounds
    if not all(map(math.isfinite, (west, south, east, north))):
        raise InputError(path, "coordinates", "some coordinates are not finite numbers (a wrong CRS?)")
    if south < -90 or north > 90 or west < -180 or east > 180:
        swapped = -90 <= west and east <= 90 and -180 <= south and north <= 180
        hint = "; latitude and longitude look swapped" if swapped else "; is the CRS right?"
        raise InputError(path, "coordinates", f"lie at {west:.2f}..{east:.2f}E {south:.2f}..{north:.2f}N, "
                                              f"beyond the range of longitude and latitude{hint}")


def _checked_geometry(
    frame: gpd.GeoDataFrame, path: Path, allowed: tuple[str, ...], repair: bool
) -> gpd.GeoDataFrame:
    """Reject null, empty, wrongly typed or invalid geometries, naming the feature."""
    geoms = frame.geometry.values
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise InputError(path, _feature(frame, bad), "geometry is missing or empty")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        if not repair:
            reason = shapely.is_valid_reason(geoms[invalid][0])
            raise InputError(path, _feature(frame, invalid), f"invalid geometry ({reason}); fix it or load with repair=True")
        frame = frame.copy()
        frame.loc[invalid, frame.geometry.name] = _repair(geoms[invalid], allowed)
        geoms = frame.geometry.values
    wrong = ~frame.geom_type.isin(allowed).to_numpy()
    if wrong.any():
        found = frame.geom_type[wrong].iloc[0]
        raise InputError(path, _feature(frame, wrong), f"geometry type {found} where {' or '.join(allowed)} is expected")
    return frame


def _repair(geoms, allowed: tuple[str, ...]) -> list:
    """Make geometries valid and keep only the parts of the allowed kind."""
    fixed = shapely.make_valid(geoms)
    if allowed == POLYGON:
        fixed = [_polygonal(g) for g in fixed]
    return fixed


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygon parts of a repaired geometry (make_valid may add lines)."""
    if geom.geom_type in POLYGON:
        return geom
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in POLYGON]
    return shapely.union_all(parts)


def _feature(frame: gpd.GeoDataFrame, mask) -> str:
    """Name the first offending feature by its name column if it has one."""
    position = int(mask.nonzero()[0][0])
    row = frame.iloc[position]
    for column in ("name_zh", "name", "id"):
        if column in frame.columns:
            return f"feature {position} ({row[column]})"
    return f"feature {position}"


def _first_line(exc: BaseException) -> str:
    """Keep library messages to one line, as the CLI contract demands."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
