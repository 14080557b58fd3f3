"""What produced an output, one builder for every study: scenario, seed, versions, git commit, input hashes, timings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from layers import LayerStack

from ..engine.targets import LAST_TARGET_YEAR, TARGETS_2027, full_scale
from ..policy.scenario import Scenario
from ..simulation.run import RunResult
from .folder import TOOL, listed_files, write_file

PACKAGES = (
    "numpy", "pandas", "scipy", "shapely", "pyproj", "geopandas", "pyogrio", "rasterio", "mesa", "pydeck", "pydantic",
    "pyarrow", "numba", "dask", "distributed", "matplotlib", "vision-valley-twin",
)


def manifest(kind: str, runs: list[dict[str, Any]], **study: Any) -> dict[str, Any]:
    """The manifest of every study: the tool's marker, the kind of study, one :func:`run_record` a run, the
    study's own fields, then the package versions, the git commit and the command line."""
    return {"tool": TOOL, "kind": kind, "runs": runs, **study,
            "versions": package_versions(), "git_commit": git_commit(), "git": git_state(), "command": sys.argv}


def run_record(spec: Scenario, seed: int, stack: LayerStack, params: Any = None) -> dict[str, Any]:
    """What one run of a study was made from: enough to rerun it (the resolved scenario, its file, the seed, the
    parameter vector when known, and every input file with its hash: layers, tables, the calibration file, the
    scenario file and each parent it extends).

    Every study's per-run provenance is built here, so anything added to it
    reaches the manifests of runs, comparisons, ensembles, attributions and searches alike.
    """
    files = input_files(stack, spec)
    record = {"scenario": spec.model_dump(mode="json"), "scenario_file": spec.source, "seed": seed}
    if params is not None:
        record["params"] = dataclasses.asdict(params)
    return record | {"calibration": str(spec.calibration_file()),
                     "input_files": {key: str(p) for key, p in files.items()},
                     "inputs_sha256": {key: file_sha256(p) for key, p in files.items()}}


def result_record(result: RunResult) -> dict[str, Any]:
    """:func:`run_record` of a finished run, with its parameter vector, timings, 2027 target status and warnings."""
    return run_record(result.scenario, result.seed, result.layers, result.params) | {
        "timings_s": result.timings, "targets_2027": target_status(result), "warnings": list(result.layers.warnings)}


def write_manifest(folder: Path, content: dict[str, Any]) -> None:
    """Write ``folder/manifest.json``, last: it lists every file in the folder, which is what marks them as the
    tool's own (a rerun replaces exactly those, and refuses a folder holding anything else)."""
    files = sorted([*listed_files(folder), "manifest.json"])
    write_json(folder / "manifest.json", content | {"files": files})


def write_json(path: Path, content: Any) -> None:
    """Indented UTF-8 JSON with a final newline, written atomically."""
    write_file(path, json.dumps(content, ensure_ascii=False, indent=2, default=str) + "\n")


def input_files(stack: LayerStack, spec: Scenario | None = None, *, scenario_files: bool = True) -> dict[str, Path]:
    """Every input file a run reads: layers and tables, and with ``spec`` its calibration file, the scenario file
    and each parent it extends (``scenario``, ``scenario_parent_1``, ...; not with ``scenario_files=False``)."""
    files = {key: Path(p) for key, p in stack.files.items()}
    if spec is not None:
        files["calibration"] = spec.calibration_file()
        if scenario_files:
            for i, path in enumerate(spec.files):
                files["scenario" if i == 0 else f"scenario_parent_{i}"] = Path(path)
    return {key: p for key, p in sorted(files.items()) if p.exists()}


def input_hashes(stack: LayerStack, spec: Scenario | None = None, *, scenario_files: bool = True) -> dict[str, str]:
    """SHA-256 of every input file a run reads (see :func:`input_files`)."""
    return {key: file_sha256(p) for key, p in input_files(stack, spec, scenario_files=scenario_files).items()}


def target_status(result: RunResult) -> dict[str, dict]:
    """Each 2027 target against the run's figure in 2027 (or its last year before), as a full-city estimate
    (:func:`~twin.engine.targets.full_scale`); below params.scale 1 the run's own figure is kept as ``simulated``."""
    snap = max((s for s in result.years if s.year <= LAST_TARGET_YEAR), key=lambda s: s.year)
    scale = result.params.scale
    estimate = full_scale(snap.figures, scale)
    status = {}
    for metric, (target, label) in TARGETS_2027.items():
        status[metric] = {"year": snap.year, "value": estimate[metric], "target": target, "met": estimate[metric] >= target, "label": label}
        if scale < 1:
            status[metric]["simulated"] = snap.figures[metric]
    return status


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read a MiB at a time."""
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


def git_state() -> dict[str, Any] | None:
    """Whether the checkout differs from its commit, and a SHA-256 of the difference (tracked changes and the
    names of untracked files), so a manifest tells a run of committed code from one of edited code."""
    root = Path(__file__).resolve().parents[2]
    try:
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=root, capture_output=True, timeout=30)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if diff.returncode or status.returncode:
        return None
    return {"dirty": bool(status.stdout.strip()), "diff_sha256": hashlib.sha256(diff.stdout + status.stdout).hexdigest()}


def git_commit() -> str | None:
    """The checkout's commit, when the code runs from one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
