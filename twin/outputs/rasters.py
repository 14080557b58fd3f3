"""Rasters for QGIS and GDAL: multi-band GeoTIFFs on the analysis grid, such as firm revenue density."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import rasterio

from layers import Grid

from ..simulation.run import RunResult
from .folder import atomic_file


def write_density(result: RunResult, path: os.PathLike[str]) -> None:
    """Firm revenue density (CNY per km² per year), one band a year, bands named by year."""
    area = result.grid.cell_area_km2
    write_geotiff(result.grid, path, {str(s.year): s.revenue / np.float32(area) for s in result.years})


def write_geotiff(grid: Grid, path: str | os.PathLike[str], bands: Mapping[str, np.ndarray], *, nodata: float | None = None) -> None:
    """Write named 2-D arrays of ``grid`` as one multi-band GeoTIFF (deflate, tiled), atomically.

    Band names go into the band descriptions, which GDAL, QGIS and
    rasterio all show, so a reader knows which band is which year.
    """
    if not bands:
        raise ValueError("no bands to write")
    stack = np.stack([np.asarray(a) for a in bands.values()])
    if stack.shape[1:] != grid.shape:
        raise ValueError(f"bands have shape {stack.shape[1:]}, the grid is {grid.shape}")
    profile = grid.profile | {"count": len(bands), "dtype": stack.dtype.name, "nodata": nodata, "compress": "deflate", "tiled": True}
    with atomic_file(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(stack)
        for i, name in enumerate(bands, start=1):
            dst.set_band_description(i, str(name))
