"""Writing a run's files: metrics.csv, firms.parquet, density.tif, map.html and manifest.json.

The caller hands a temporary folder from :func:`twin.outputs.folder.atomic_folder`,
which is renamed into place only when complete.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..simulation.run import RunResult
from .manifest import write_manifest
from .rasters import write_density
from .tables import comparison_table, write_firms, write_metrics


def write_run(result: RunResult, folder: Path, *, png: bool = False, lang: str = "zh") -> None:
    """Write every output of one run into ``folder`` (a temporary folder from :func:`atomic_folder`)."""
    write_metrics(result.metrics, folder / "metrics.csv")
    write_firms(result, folder / "firms.parquet")
    write_density(result, folder / "density.tif")
    _write_map(folder, result, None, png, lang)
    write_manifest(folder / "manifest.json", [result])


def write_comparison(result: RunResult, other: RunResult, folder: Path, *, png: bool = False, lang: str = "zh") -> pd.DataFrame:
    """Write both runs' metrics, their differences and the comparison map; return the differences."""
    write_metrics(pd.concat([result.metrics, other.metrics], ignore_index=True), folder / "metrics.csv")
    table = comparison_table(result, other)
    write_metrics(table, folder / "comparison.csv")
    _write_map(folder, result, other, png, lang)
    write_manifest(folder / "manifest.json", [result, other])
    return table


def _write_map(folder: Path, result: RunResult, other: RunResult | None, png: bool, lang: str) -> None:
    """map.html, opening in ``lang`` (and map_zh.png, map_en.png) from :mod:`twin.outputs.maps`."""
    from . import maps

    maps.write_map(folder / "map.html", result, other, lang=lang)
    if png:
        maps.write_pngs(folder / "map.html", folder)
