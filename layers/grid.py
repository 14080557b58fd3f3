"""The one analysis grid: a rasterio transform over the whole city in EPSG:4549.

Every per-cell quantity in the model is a 2-D array of ``Grid.shape`` and every
agent holds a flat cell index into it, so this module owns the conversions
between vectors, points, flat indices and the rasters a run reads (writing
GeoTIFFs is an output's job: :mod:`twin.outputs.rasters`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from scipy import ndimage

from .errors import InputError, require_file

METRIC_CRS = "EPSG:4549"
"""CGCS2000 / 3-degree Gauss-Kruger CM 120E: the frame Hangzhou's planners use."""


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, affine transform and (rows, cols) shape."""

    crs: CRS
    transform: Affine
    shape: tuple[int, int]

    @classmethod
    def covering(cls, frame: gpd.GeoDataFrame, cell_m: float = 250.0, crs: str = METRIC_CRS) -> "Grid":
        """Build the smallest grid, snapped to whole cells, that covers ``frame``.

        Snapping the origin to a multiple of the cell size makes grids of the
        same cell size line up across runs and user layers.
        """
        if not cell_m > 0:
            raise ValueError(f"cell size must be positive, got {cell_m}")
        west, south, east, north = frame.to_crs(crs).total_bounds
        west = math.floor(west / cell_m) * cell_m
        north = math.ceil(north / cell_m) * cell_m
        cols = math.ceil((east - west) / cell_m)
        rows = math.ceil((north - south) / cell_m)
        return cls(CRS.from_user_input(crs), Affine(cell_m, 0.0, west, 0.0, -cell_m, north), (rows, cols))

    @property
    def cell_m(self) -> float:
        """Cell edge length in metres."""
        return float(self.transform.a)

    @property
    def cell_area_km2(self) -> float:
        """Area of one cell in square kilometres."""
        return self.cell_m * self.cell_m / 1e6

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.shape[0] * self.shape[1]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the grid CRS."""
        west, north = self.transform.c, self.transform.f
        return west, north - self.shape[0] * self.cell_m, west + self.shape[1] * self.cell_m, north

    @property
    def profile(self) -> dict:
        """A rasterio profile for writing arrays of this grid."""
        return {"driver": "GTiff", "crs": self.crs, "transform": self.transform, "height": self.shape[0], "width": self.shape[1]}

    def rasterize(
        self,
        frame: gpd.GeoDataFrame,
        values: Sequence[float] | np.ndarray | None = None,
        *,
        fill: float = 0,
        dtype: str = "float32",
        all_touched: bool = False,
    ) -> np.ndarray:
        """Burn features into a grid array; cells whose centre lies in a feature get its value.

        Without ``values`` each feature burns 1. Later features win where
        features overlap, so callers order them by priority.
        """
        geoms = frame.to_crs(self.crs).geometry.values
        burn = np.ones(len(geoms)) if values is None else np.asarray(values)
        return rasterio.features.rasterize(
            zip(geoms, burn.tolist()), out_shape=self.shape, transform=self.transform, fill=fill, dtype=dtype, all_touched=all_touched
        )

    def fraction(self, frame: gpd.GeoDataFrame, values: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """Area-weighted mean of the features' values in each cell (1 per feature without ``values``, 0 where none).

        Burning cell centres alone drops a river narrower than a cell or keeps a
        cell that water barely touches; burning up to 4 x 4 sub-cells of at
        least 50 m and averaging measures how much of each cell a layer covers
        without the fine grid outgrowing memory on small cells.
        """
        factor = max(1, min(4, int(self.cell_m // 50)))
        fine = Grid(self.crs, self.transform @ Affine.scale(1 / factor), (self.shape[0] * factor, self.shape[1] * factor))
        burnt = fine.rasterize(frame, values, dtype="float32")
        return burnt.reshape(self.shape[0], factor, self.shape[1], factor).mean(axis=(1, 3), dtype=np.float32)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index of grid-CRS coordinates; -1 where a point is off the grid."""
        col, row = ~self.transform @ (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        col, row = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
        inside = (row >= 0) & (row < self.shape[0]) & (col >= 0) & (col < self.shape[1])
        return np.where(inside, row * self.shape[1] + col, -1)

    def cells_of_points(self, frame: gpd.GeoDataFrame) -> np.ndarray:
        """Flat cell index of each point feature (-1 off the grid)."""
        pts = frame.to_crs(self.crs).geometry
        return self.cell_of(pts.x.to_numpy(), pts.y.to_numpy())

    def centre_of(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid-CRS coordinates of the centres of flat cell indices."""
        row, col = np.divmod(np.asarray(cells, dtype=np.int64), self.shape[1])
        return self.transform @ (col + 0.5, row + 0.5)

    def distance_to(self, frame: gpd.GeoDataFrame) -> np.ndarray:
        """Metres from every cell centre to the nearest cell the features touch (0 inside)."""
        return self.distance_to_cells(self.rasterize(frame, all_touched=True, dtype="uint8").astype(bool))

    def distance_to_cells(self, mask: np.ndarray) -> np.ndarray:
        """Metres from every cell centre to the nearest True cell of ``mask`` (0 on it)."""
        if not mask.any():
            raise ValueError("no feature touches the grid, so distances to it are undefined")
        return (ndimage.distance_transform_edt(~mask) * self.cell_m).astype(np.float32)

    def read_raster(
        self, path: str | os.PathLike[str], band: int = 1, resampling: Resampling = Resampling.bilinear
    ) -> np.ndarray:
        """Read a band of any georeferenced raster, warped onto this grid (NaN where it has no data)."""
        with open_raster(path) as src:
            if not 1 <= band <= src.count:
                raise InputError(path, "band", f"band {band} asked for, the file has {src.count}")
            out = np.full(self.shape, np.nan, dtype=np.float32)
            rasterio.warp.reproject(
                rasterio.band(src, band),
                out,
                dst_transform=self.transform,
                dst_crs=self.crs,
                dst_nodata=np.nan,
                resampling=resampling,
            )
        return out


@contextmanager
def open_raster(path: str | os.PathLike[str]) -> Iterator[rasterio.io.DatasetReader]:
    """Open a user's raster, refusing one that is not a regular file, cannot be read, or has no CRS.

    Every raster a run reads goes through here, so the three checks and their
    one-line errors are the same for the land layer and any other band.
    """
    path = require_file(path)
    try:
        src_ctx = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(path, "file", f"cannot be read as a raster ({str(exc).splitlines()[0]})") from None
    with src_ctx as src:
        if src.crs is None:
            raise InputError(path, "crs", "the raster has no coordinate reference system; assign one (for example with gdal_edit.py -a_srs EPSG:4549)")
        yield src
