"""Writing a run's files: metrics.csv, firms.parquet, density.tif, manifest.json (and the map).

Everything goes into a hidden temporary folder beside the target, which is
renamed into place only when complete, so an interrupted run never leaves a
half-written output folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from layers import GIS_DATA

from .run import RunResult

PACKAGES = (
    "numpy", "pandas", "scipy", "shapely", "pyproj", "geopandas", "pyogrio", "rasterio", "mesa", "pydeck", "pydantic",
    "pyarrow", "numba", "dask", "distributed", "matplotlib", "vision-valley-twin",
)
TARGETS_2027 = {
    "total_scale_cny": (1e12, "total visual-intelligence scale 1 万亿元"),
    "revenue_cny": (4e11, "core revenue 4000 亿元"),
    "leaders_100bn": (2, "2 firms at 千亿 scale"),
}
"""The 2027 targets (FACTS: the seed article; gdthub.cn/port/show.html?id=508)."""


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` on success and vanishes on failure."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed outright
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_run(result: RunResult, folder: Path, *, png: bool = False) -> None:
    """Write every output of one run into ``folder`` (a temporary folder from :func:`atomic_folder`)."""
    write_metrics(result.metrics, folder / "metrics.csv")
    write_firms(result, folder / "firms.parquet")
    write_density(result, folder / "density.tif")
    _write_map(folder, result, None, png)
    write_manifest(folder / "manifest.json", [result])


def write_comparison(result: RunResult, other: RunResult, folder: Path, *, png: bool = False) -> pd.DataFrame:
    """Write both runs' metrics, their differences and the comparison map; return the differences."""
    write_metrics(pd.concat([result.metrics, other.metrics], ignore_index=True), folder / "metrics.csv")
    table = comparison_table(result, other)
    write_metrics(table, folder / "comparison.csv")
    _write_map(folder, result, other, png)
    write_manifest(folder / "manifest.json", [result, other])
    return table


def comparison_table(result: RunResult, other: RunResult) -> pd.DataFrame:
    """Per year, metric and breakdown: both values, the difference and the relative difference."""
    keys = ["year", "metric", "zone", "district", "track"]
    a = result.metrics[keys + ["value"]].rename(columns={"value": result.scenario.name})
    b = other.metrics[keys + ["value"]].rename(columns={"value": other.scenario.name})
    if result.scenario.name == other.scenario.name:
        b = b.rename(columns={other.scenario.name: f"{other.scenario.name}_other"})
    table = a.merge(b, on=keys, how="outer").fillna({a.columns[-1]: 0.0, b.columns[-1]: 0.0})
    first, second = table.columns[-2], table.columns[-1]
    table["difference"] = table[first] - table[second]
    table["relative_difference"] = np.divide(table["difference"], table[second].abs(), out=np.full(len(table), np.nan), where=table[second] != 0)
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def write_metrics(table: pd.DataFrame, path: Path) -> None:
    """Tidy CSV, UTF-8 with a BOM so Excel shows the Chinese names."""
    table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


def write_firms(result: RunResult, path: Path) -> None:
    """GeoParquet of every firm at the kept years, readable by geopandas and QGIS."""
    frames = [snap.firms for snap in result.years if snap.firms is not None]
    firms = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    firms.to_parquet(path, index=False, write_covering_bbox=False)


def write_density(result: RunResult, path: Path) -> None:
    """Firm revenue density (CNY per km² per year), one band a year, bands named by year."""
    area = result.grid.cell_area_km2
    result.grid.write_geotiff(path, {str(s.year): s.revenue / np.float32(area) for s in result.years})


def write_manifest(path: Path, results: list[RunResult]) -> None:
    """What produced these files: scenario(s), seed(s), versions, git commit, input hashes, timings."""
    manifest = {
        "runs": [
            {
                "scenario": r.scenario.model_dump(mode="json"),
                "scenario_file": r.scenario.source,
                "seed": r.seed,
                "timings_s": r.timings,
                "inputs_sha256": input_hashes(r),
                "targets_2027": target_status(r),
            }
            for r in results
        ],
        "versions": package_versions(),
        "git_commit": git_commit(),
        "command": sys.argv,
    }
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def input_hashes(result: RunResult) -> dict[str, str]:
    """SHA-256 of every input file the run read: layers, tables and the scenario chain."""
    files = dict(result.layers.files)
    for name in ("anchor_firms.csv", "compute_centres.csv"):
        files[name] = GIS_DATA / name
    if result.scenario.source:
        files["scenario"] = Path(result.scenario.source)
    return {key: _sha256(Path(p)) for key, p in sorted(files.items()) if Path(p).exists()}


def target_status(result: RunResult) -> dict[str, dict]:
    """Each 2027 target against the run's figure in 2027 (or its last year before)."""
    snap = max((s for s in result.years if s.year <= 2027), key=lambda s: s.year)
    return {
        metric: {"year": snap.year, "value": snap.figures[metric], "target": target, "met": snap.figures[metric] >= target, "label": label}
        for metric, (target, label) in TARGETS_2027.items()
    }


def _write_map(folder: Path, result: RunResult, other: RunResult | None, png: bool) -> None:
    """map.html (and map.png) from :mod:`twin.maps`."""
    from . import maps

    maps.write_map(folder / "map.html", result, other)
    if png:
        maps.write_png(folder / "map.html", folder / "map.png")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    """Python's and the installed packages' versions, for manifests."""
    return {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The checkout's commit, when the code runs from one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
