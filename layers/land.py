"""The developable-land layer: where floor space and homes can go, as a weight in [0, 1].

The shipped layer is gis_data/land.tif, built from open data (see
gis_data/README.md). A planner replaces it with the official layer they hold
(三调 land use, 国土空间规划, 生态保护红线) as a raster or a vector file; both
are checked here for CRS, extent and values before any model uses them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.warp
import rasterio.windows
import shapely
from rasterio.enums import Resampling
from rasterio.windows import Window

from .errors import InputError
from .grid import Grid, open_raster
from .vector import POLYGON, WGS84, read_layer

RASTER_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class LandSource:
    """A validated land layer: a raster file, or polygons with a ``weight`` in [0, 1]."""

    path: Path
    polygons: gpd.GeoDataFrame | None = None

    @classmethod
    def read(cls, path: str | os.PathLike[str], city: shapely.Geometry, repair: bool = False) -> LandSource:
        """Check a land file against the city's outline; rasters by suffix (.tif, .tiff), anything else as vectors.

        A vector needs a numeric column ``weight`` (0..1, relative floor-space
        potential) or ``developable`` (0 or 1); ``weight`` wins if both exist.
        """
        path = Path(path)
        if path.suffix.lower() in RASTER_SUFFIXES:
            _check_raster(path, city)
            return cls(path)
        return cls(path, _weighted_polygons(path, city, repair))

    def on_grid(self, grid: Grid, city: np.ndarray) -> np.ndarray:
        """The weight averaged onto ``grid`` (NaN where the layer has no data); InputError if no city cell is covered."""
        weight = self._burnt(grid) if self.polygons is not None else self._warped(grid)
        if not np.isfinite(weight[city]).any():
            raise InputError(self.path, "extent", "covers no cell of Hangzhou's districts")
        return weight

    def _burnt(self, grid: Grid) -> np.ndarray:
        """Area-average the polygons' weights, uncovered land counting 0; NaN on cells no polygon reaches."""
        weight = grid.fraction(self.polygons, self.polygons["weight"].to_numpy())
        return np.where(grid.fraction(self.polygons) > 0, weight, np.nan).astype(np.float32)

    def _warped(self, grid: Grid) -> np.ndarray:
        """Area-average the raster where the grid is coarser than it (so thin water is not lost), else take nearest."""
        with rasterio.open(self.path) as src:
            west, south, east, north = rasterio.warp.transform_bounds(src.crs, grid.crs, *src.bounds)
            coarser = grid.cell_m >= min((east - west) / src.width, (north - south) / src.height)
        return grid.read_raster(self.path, resampling=Resampling.average if coarser else Resampling.nearest)


MAX_CELLS = 400_000_000
"""Most raster cells read over the city's bounding box: a 10 m raster of all of Hangzhou's districts (about 350
million) fits; a finer one is refused in seconds instead of read for minutes (resample it with gdalwarp -tr)."""

CHUNK_CELLS = 1 << 22
"""Cells read at a time when scanning a raster's values, so a large official raster fits in memory."""


def _check_raster(path: Path, city: shapely.Geometry) -> None:
    """CRS, numeric band, overlap with the city, size, and every valid value in [0, 1] with some land above 0.

    Only the header is read until the raster is known to overlap the city and the part covering it is of a
    readable size; then that part alone is scanned, so a huge sparse raster costs seconds, not minutes.
    """
    with open_raster(path) as src:
        if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer) and not np.issubdtype(np.dtype(src.dtypes[0]), np.floating):
            raise InputError(path, "band 1", f"values of type {src.dtypes[0]} are not real numbers")
        check_overlap(path, shapely.box(*rasterio.warp.transform_bounds(src.crs, WGS84, *src.bounds)), city)
        window = _city_window(path, src, city)
        if window.width * window.height > MAX_CELLS:
            raise InputError(path, "size", f"the part covering the city is {int(window.width):,} x {int(window.height):,} cells "
                                           f"({src.res[0]:g} x {src.res[1]:g} units each); at most {MAX_CELLS:,} are read: "
                                           "resample it coarser (gdalwarp -tr 10 10 ...)")
        low, high = _value_range(src, window)
    if low is None:
        raise InputError(path, "band 1", "has no valid values over the city (everything is nodata)")
    if low < 0 or high > 1:
        raise InputError(path, "band 1", f"values run from {low:g} to {high:g}; the land weight must lie in [0, 1]")
    if high == 0:
        raise InputError(path, "band 1", "every value over the city is 0: no land would be developable")


def _city_window(path: Path, src: rasterio.DatasetReader, city: shapely.Geometry) -> Window:
    """The raster's cells within the city's bounding box (whole cells, clipped to the raster), from the header alone."""
    if not src.transform.is_rectilinear:
        raise InputError(path, "transform", "the raster is rotated; warp it north-up first (gdalwarp)")
    bounds = rasterio.warp.transform_bounds(WGS84, src.crs, *city.bounds, densify_pts=21)
    window = rasterio.windows.from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
    try:
        return window.intersection(Window(0, 0, src.width, src.height))
    except rasterio.errors.WindowError:
        return Window(0, 0, 0, 0)


def _value_range(src: rasterio.DatasetReader, window: Window) -> tuple[float | None, float | None]:
    """Smallest and largest valid value of band 1 within ``window``, a band of rows at a time."""
    low = high = None
    rows = max(1, CHUNK_CELLS // max(int(window.width), 1))
    for top in range(int(window.row_off), int(window.row_off + window.height), rows):
        height = min(rows, int(window.row_off + window.height) - top)
        block = src.read(1, window=Window(window.col_off, top, window.width, height), masked=True)
        values = block.compressed()
        values = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        if values.size:
            low = float(values.min()) if low is None else min(low, float(values.min()))
            high = float(values.max()) if high is None else max(high, float(values.max()))
    return low, high


def _weighted_polygons(path: Path, city: shapely.Geometry, repair: bool) -> gpd.GeoDataFrame:
    """Polygons with a numeric ``weight`` in [0, 1], taken from ``weight`` or a 0/1 ``developable`` column."""
    frame = read_layer(path, geometry=POLYGON, repair=repair)
    column = "weight" if "weight" in frame.columns else "developable" if "developable" in frame.columns else None
    if column is None:
        raise InputError(path, "columns", f"needs a numeric column weight (0..1) or developable (0/1); found {', '.join(map(str, frame.columns))}")
    values = pd.to_numeric(frame[column], errors="coerce")
    allowed = values.isin([0, 1]) if column == "developable" else values.between(0, 1)
    if not allowed.all():
        position = int(np.flatnonzero(~allowed.to_numpy())[0])
        rule = "0 or 1" if column == "developable" else "a number in [0, 1]"
        raise InputError(path, f"feature {position}", f"{column} is {frame[column].iloc[position]!r}; it must be {rule}")
    if not (values > 0).any():
        raise InputError(path, column, "is 0 on every feature: no land would be developable")
    check_overlap(path, shapely.union_all(frame.geometry.values), city)
    return gpd.GeoDataFrame({"weight": values.astype(float)}, geometry=frame.geometry.values, crs=WGS84)


def check_overlap(path: Path, footprint: shapely.Geometry, city: shapely.Geometry) -> None:
    """A layer that misses Hangzhou is almost always a wrong CRS or a wrong file: stop it here."""
    if not footprint.intersects(city):
        west, south, east, north = footprint.bounds
        raise InputError(path, "extent", f"lies at {west:.2f}..{east:.2f}E {south:.2f}..{north:.2f}N, outside Hangzhou's districts")
