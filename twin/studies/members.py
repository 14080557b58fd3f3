"""One ensemble member: run on a worker, reduced to a small file, read back and checked.

A member file (``p<point>_m<member>.npz``) holds the member's tidy metric
values, its figures against the 2027 targets and, per year, the bit-packed
grid of cells whose revenue exceeds the base year's, and the revenue of every 1 km map cell holding
firms in the judged year (sparse, float32: what the attribution map splits by lever). Every file
carries the ensemble's token, so members of another run are never mixed in, and a SHA-256 of its
content, so a member edited after it was written is run again, never folded in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import layers

from ..engine.metrics import KEYS
from ..engine.targets import LAST_TARGET_YEAR, TARGETS_2027
from ..outputs.folder import STORE, write_file
from ..outputs.manifest import target_status
from ..outputs.maps.payload import CELL_M, _coarse
from ..policy.scenario import Scenario

FORMAT = 5
"""Version of the member file layout; part of the fingerprint (5: the target figures are full-city estimates)."""

MEMBERS = STORE
"""The member store's folder inside a study's output folder (carried from one output to the next)."""
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

    ``spec`` is the member's own run spec (``MemberSpec.run_spec``: its draws
    already applied). The file is written by the worker when it sees the
    members folder; else its bytes are returned for the client to write.
    """
    from ..simulation.run import simulate

    started = time.perf_counter()
    result = simulate(spec, seed, stack=_stack(spec), firm_years=())
    seconds = time.perf_counter() - started
    payload = encode_member(result, point, member, seed, token, seconds)
    del result
    summary: dict[str, Any] = {"point": point, "member": member, "seconds": seconds, "bytes": len(payload)}
    if _sees_folder(members_dir, token):
        path = member_file(Path(members_dir), point, member)
        write_file(path, payload)
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
    meta["sha256"] = content_hash(meta, arrays)
    arrays["meta"] = np.array(json.dumps(meta))
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


def content_hash(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of a member's content: its meta (but this hash) and every array's name, type, shape and bytes."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(arrays):
        if name != "meta":
            array = np.ascontiguousarray(arrays[name])
            digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


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
        _check_meta(meta)
        checks = {"format": FORMAT, "token": token, "point": point, "member": member, "seed": seed, "shape": list(shape)}
        for name, expected in checks.items():
            if meta[name] != expected:
                raise ValueError(f"{name} is {meta[name]!r}, expected {expected!r}")
        for name, kind in ARRAY_TYPES.items():
            if (arrays[name].dtype.kind != "U") if kind is str else arrays[name].dtype != np.dtype(kind):
                raise ValueError(f"{name} is {arrays[name].dtype}, expected {np.dtype(kind)}")
        if content_hash(meta, arrays) != meta["sha256"]:
            raise ValueError("its content does not match its checksum (changed after it was written)")
        grid_years = [int(y) for y in arrays["grid_years"]]
        if grid_years != years:
            raise ValueError(f"years {grid_years}, expected {years}")
        cells = shape[0] * shape[1]
        if arrays["grown"].shape != (len(years), (cells + 7) // 8):
            raise ValueError("revenue-growth grids of the wrong size")
        value = arrays["value"]
        columns = [arrays["year"]] + [arrays[key] for key in KEYS[1:]]
        if any(len(c) != len(value) for c in columns) or arrays["targets"].shape != (len(TARGETS_2027),):
            raise ValueError("metric columns of different lengths")
        if arrays["cell_revenue"].shape != arrays["cells"].shape:
            raise ValueError("map cells of the wrong length")
        keys = list(zip(arrays["year"].tolist(), *(arrays[key].tolist() for key in KEYS[1:])))
    except KeyError as exc:
        raise ValueError(f"member file lacks {exc}") from None
    return Member(point, member, seed, float(meta["seconds"]), keys, value, meta["target_year"],
                  arrays["targets"], grid_years, arrays["grown"], arrays["cells"], arrays["cell_revenue"])


ARRAY_TYPES = {"year": np.int64, **{key: str for key in KEYS[1:]}, "value": np.float64, "grid_years": np.int64,
               "grown": np.uint8, "targets": np.float64, "cells": np.int32, "cell_revenue": np.float32}
"""The type of every array of a member file (``str``: text of any length): other types are not this tool's."""

_META = {"format": int, "token": str, "point": int, "member": int, "seed": int, "shape": list, "sha256": str}


def _check_meta(meta: Any) -> None:
    """Refuse meta that is not what :func:`encode_member` writes: not an object, a field of another type (a
    boolean or a string for a number), a duration that is not a finite number of seconds."""
    if not isinstance(meta, dict):
        raise ValueError(f"meta is a {type(meta).__name__}, not an object")
    for name, kind in _META.items():
        if not isinstance(meta.get(name), kind) or isinstance(meta[name], bool):
            raise ValueError(f"meta.{name} is {meta.get(name)!r}, not a {kind.__name__}")
    seconds, year = meta.get("seconds"), meta.get("target_year", "missing")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"meta.seconds is {seconds!r}, not a duration")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ValueError(f"meta.target_year is {year!r}, not a year")
