"""Rasters for QGIS and GDAL: firm revenue density, one band a year."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..simulation.run import RunResult


def write_density(result: RunResult, path: Path) -> None:
    """Firm revenue density (CNY per km² per year), one band a year, bands named by year."""
    area = result.grid.cell_area_km2
    result.grid.write_geotiff(path, {str(s.year): s.revenue / np.float32(area) for s in result.years})
