"""One ensemble member: run on a worker, reduced to a small file, read back and checked.

A member file (``p<point>_m<member>.npz``) holds the member's tidy metric
values, its figures against the 2027 targets and, per year, the bit-packed
grid of cells whose revenue exceeds the base year's, and the revenue of every 1 km map cell holding
firms in the judged year (sparse, float32: what the attribution map splits by lever). Every file
carries the ensemble's token, so members of another run are never mixed in.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import layers

from ..engine.metrics import KEYS
from ..engine.targets import LAST_TARGET_YEAR, TARGETS_2027
from ..outputs.manifest import target_status
from ..outputs.maps.payload import CELL_M, _coarse
from ..policy.scenario import Scenario

FORMAT = 3
"""Version of the member file layout; part of the fingerprint."""

MEMBERS = "members"
FINGERPRINT = "fingerprint.json"


_STACKS: dict[str, layers.LayerStack] = {}
"""Layer stacks loaded in this worker process, by their ``layers.load`` arguments."""


_SHARED: dict[tuple[str, str], bool] = {}
"""Whether this worker process sees the ensemble's members folder (shared file system)."""


def _stack(spec: Scenario) -> layers.LayerStack:
    """The scenario's layers, loaded once per worker process."""
    arguments = spec.layer_arguments()
    key = json.dumps(arguments, sort_keys=True, default=str)
    if key not in _STACKS:
        _STACKS[key] = layers.load(**arguments)
    return _STACKS[key]


def _sees_folder(members_dir: str, token: str) -> bool:
    """True when this process can read the client's fingerprint file, so it can write members there."""
    key = (members_dir, token)
    if key not in _SHARED:
        try:
            _SHARED[key] = json.loads((Path(members_dir) / FINGERPRINT).read_text(encoding="utf-8"))["token"] == token
        except (OSError, ValueError, KeyError, TypeError):
            _SHARED[key] = False
    return _SHARED[key]


def member_file(members_dir: Path, point: int, member: int) -> Path:
    """Where a member's file lives."""
    return Path(members_dir) / f"p{point:04d}_m{member:06d}.npz"


def run_member(spec: Scenario, point: int, member: int, seed: int, members_dir: str, token: str) -> dict[str, Any]:
    """Run one member in a worker and write its file; return only a small summary.

    The file is written by the worker when it sees the members folder; else its
    bytes are returned for the client to write.
    """
    from ..simulation.run import simulate
    from .seeds import posterior_spec

    started = time.perf_counter()
    result = simulate(posterior_spec(spec, seed), seed, stack=_stack(spec), firm_years=())
    seconds = time.perf_counter() - started
    payload = encode_member(result, point, member, seed, token, seconds)
    del result
    summary: dict[str, Any] = {"point": point, "member": member, "seconds": seconds, "bytes": len(payload)}
    if _sees_folder(members_dir, token):
        path = member_file(Path(members_dir), point, member)
        write_atomic(path, payload)
        summary["path"] = str(path)
    else:
        summary["payload"] = payload
    return summary


def encode_member(result, point: int, member: int, seed: int, token: str, seconds: float) -> bytes:
    """A finished run reduced to the member file: metric values, target figures and, per year, one bit a cell:
    does its revenue exceed the base year's? (What policy changes, unlike where firms already are.)"""
    metrics = result.metrics
    shape = tuple(result.grid.shape)
    targets = _target_values(result)
    meta = {
        "format": FORMAT, "token": token, "point": point, "member": member, "seed": seed,
        "shape": list(shape), "target_year": targets[0], "seconds": round(seconds, 3),
    }
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "year": metrics["year"].to_numpy(np.int64),
        **{key: np.asarray(metrics[key].astype(str), dtype=str) for key in KEYS[1:]},
        "value": metrics["value"].to_numpy(np.float64),
        "grid_years": np.array([snap.year for snap in result.years], dtype=np.int64),
        "grown": np.stack([np.packbits((snap.revenue > result.years[0].revenue).ravel()) for snap in result.years]),
        "targets": np.array(targets[1], dtype=np.float64),
        **_map_cells(result),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def map_factor(grid: layers.Grid) -> int:
    """How many grid cells make one edge of a map cell (``CELL_M``, 1 km)."""
    return max(1, round(CELL_M / grid.cell_m))


def cell_year(years: list[int]) -> int:
    """The year whose map cells a member keeps: 2027, or the last simulated year before it (the judged year)."""
    return max(years[0], min(LAST_TARGET_YEAR, years[-1]))


def _map_cells(result) -> dict[str, np.ndarray]:
    """The judged year's core revenue per 1 km map cell, only cells with firms: flat indices (int32) and CNY (float32)."""
    year = cell_year([snap.year for snap in result.years])
    coarse = _coarse(result.year(year).revenue, map_factor(result.grid)).ravel()
    cells = np.flatnonzero(coarse).astype(np.int32)
    return {"cells": cells, "cell_revenue": coarse[cells].astype(np.float32)}


def _target_values(result) -> tuple[int | None, list[float]]:
    """The year the 2027 targets are judged in and the member's figures, in TARGETS_2027 order."""
    if result.years[0].year > LAST_TARGET_YEAR:
        return None, [math.nan] * len(TARGETS_2027)
    status = target_status(result)
    year = next(iter(status.values()))["year"]
    return int(year), [float(status[metric]["value"]) for metric in TARGETS_2027]


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes under a temporary name, flush them to disk, then rename into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@dataclasses.dataclass
class Member:
    """One member file, read and checked."""

    point: int
    member: int
    seed: int
    seconds: float
    keys: list[tuple]
    values: np.ndarray
    target_year: int | None
    targets: np.ndarray
    grid_years: list[int]
    grown: np.ndarray  # (years, packed bytes) uint8: revenue above the base year's, per cell
    cells: np.ndarray  # int32 flat indices of the 1 km map cells with firms in cell_year(grid_years)
    cell_revenue: np.ndarray  # float32 core revenue (CNY) of those cells


def read_member(source: Path | bytes, *, token: str, point: int, member: int, seed: int, shape: tuple[int, int], years: list[int]) -> Member:
    """Read a member file and check it belongs here; any problem raises ``ValueError``."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        with np.load(handle, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}  # reads every entry, checking the zip CRCs
    except Exception as exc:  # a truncated or foreign file, whatever the reader raises
        raise ValueError(f"unreadable member file: {exc}") from None
    try:
        meta = json.loads(str(arrays["meta"]))
        checks = {"format": FORMAT, "token": token, "point": point, "member": member, "seed": seed, "shape": list(shape)}
        for name, expected in checks.items():
            if meta.get(name) != expected:
                raise ValueError(f"{name} is {meta.get(name)!r}, expected {expected!r}")
        grid_years = [int(y) for y in arrays["grid_years"]]
        if grid_years != years:
            raise ValueError(f"years {grid_years}, expected {years}")
        cells = shape[0] * shape[1]
        if arrays["grown"].shape != (len(years), (cells + 7) // 8) or arrays["grown"].dtype != np.uint8:
            raise ValueError("revenue-growth grids of the wrong size")
        value = arrays["value"].astype(np.float64)
        columns = [arrays["year"]] + [arrays[key] for key in KEYS[1:]]
        if any(len(c) != len(value) for c in columns) or arrays["targets"].shape != (len(TARGETS_2027),):
            raise ValueError("metric columns of different lengths")
        if arrays["cells"].dtype != np.int32 or arrays["cell_revenue"].shape != arrays["cells"].shape:
            raise ValueError("map cells of the wrong type or length")
        keys = list(zip(arrays["year"].tolist(), *(arrays[key].tolist() for key in KEYS[1:])))
    except KeyError as exc:
        raise ValueError(f"member file lacks {exc}") from None
    return Member(point, member, seed, float(meta.get("seconds", math.nan)), keys, value, meta.get("target_year"),
                  arrays["targets"].astype(np.float64), grid_years, arrays["grown"], arrays["cells"], arrays["cell_revenue"])
