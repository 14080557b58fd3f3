"""What produced an output: scenario, seed, versions, git commit, input hashes, timings and target status."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from layers import GIS_DATA, LayerStack

from ..engine.targets import LAST_TARGET_YEAR, TARGETS_2027
from ..simulation.run import RunResult
from .folder import TOOL

PACKAGES = (
    "numpy", "pandas", "scipy", "shapely", "pyproj", "geopandas", "pyogrio", "rasterio", "mesa", "pydeck", "pydantic",
    "pyarrow", "numba", "dask", "distributed", "matplotlib", "vision-valley-twin",
)


def write_manifest(path: Path, results: list[RunResult]) -> None:
    """What produced these files: scenario(s), seed(s), versions, git commit, input hashes, timings."""
    manifest = {
        "tool": TOOL,
        "runs": [
            {
                "scenario": r.scenario.model_dump(mode="json"),
                "scenario_file": r.scenario.source,
                "seed": r.seed,
                "timings_s": r.timings,
                "inputs_sha256": input_hashes(r.layers, r.scenario.source),
                "targets_2027": target_status(r),
                "warnings": list(r.layers.warnings),
            }
            for r in results
        ],
        "versions": package_versions(),
        "git_commit": git_commit(),
        "command": sys.argv,
    }
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def input_hashes(stack: LayerStack, scenario_file: str | None = None) -> dict[str, str]:
    """SHA-256 of every input file a run reads: layers, tables and (when given) the scenario file."""
    files = dict(stack.files)
    for name in ("anchor_firms.csv", "compute_centres.csv"):
        files[name] = GIS_DATA / name
    if scenario_file:
        files["scenario"] = Path(scenario_file)
    return {key: _sha256(Path(p)) for key, p in sorted(files.items()) if Path(p).exists()}


def target_status(result: RunResult) -> dict[str, dict]:
    """Each 2027 target against the run's figure in 2027 (or its last year before)."""
    snap = max((s for s in result.years if s.year <= LAST_TARGET_YEAR), key=lambda s: s.year)
    return {
        metric: {"year": snap.year, "value": snap.figures[metric], "target": target, "met": snap.figures[metric] >= target, "label": label}
        for metric, (target, label) in TARGETS_2027.items()
    }


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
