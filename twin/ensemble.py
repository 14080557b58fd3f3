"""Ensembles on Dask distributed: many seeded members of a scenario (and sweeps), folded in as they finish.

``python run_scenario.py SCENARIO --ensemble N [--workers W | --scheduler tcp://HOST:PORT]
[--sweep NAME=V1,V2,...] [--resume] [--seed S]`` runs N members of the scenario,
each with its own seed, on a Dask ``LocalCluster`` of W single-threaded worker
processes or on an existing Dask cluster, and writes into ``out/``:

``members/``
    One ``p<point>_m<member>.npz`` per finished member, written atomically by
    the worker (temporary name, then ``os.replace``): the member's tidy metric
    values, its figures against the 2027 targets and, per year, the bit-packed
    grid of cells holding firms. ``fingerprint.json`` says what the members
    belong to (scenario, seed, N, sweep, and hashes of the model code and the
    input files); every member file carries the same token, so members of
    another run are never mixed in. ``--resume`` keeps the valid member files
    and runs only the missing ones; without it the folder is started afresh.
``ensemble_metrics.csv``
    The tidy layout of ``metrics.csv`` with value columns: ``scenario, seed,
    members``, one column per swept parameter, ``year, metric, zone, district,
    track`` (empty = "all"), then ``mean, p5, p50, p95`` over the members
    (percentiles by numpy's default linear interpolation). ``seed`` is the
    ensemble's root seed.
``targets.json``
    Per sweep point, each 2027 target: how many members met it, the
    probability, a Wilson 90% interval for that probability (the Monte Carlo
    error of N members) and the spread of the member figures; the same for all
    three targets together. Members are judged in 2027, or in the scenario's
    last year if it ends earlier (``year`` says which).
``probability.tif``
    Per cell and year, the share of members in which the cell holds firms
    (float32, one band a year, bands named by year). With a sweep, one file a
    point: ``probability_<name>=<value>[_<name>=<value>...].tif``.
``map.html``
    The offline interactive map (:func:`twin.maps.write_probability_map`) of
    ``probability.tif``: per year (slider, play/pause), the mean probability
    over each 1 km cell that the cell holds firms, over the districts and
    zones, with N, the seed and the chance of meeting each 2027 target. With a
    sweep, one file a point: ``map_<name>=<value>[_<name>=<value>...].html``.
``fan_<metric>.png``
    Fan charts of the headline metrics: median, 5-95% band and mean over the
    years (one colour a sweep point), with the 2027 target where there is one.
``manifest.json``
    Scenario, root seed, N, member seeds and how they were made, sweep points,
    execution (cluster, workers), timings, versions, code and input hashes.

Reproducibility: member ``i`` runs with seed
``int(SeedSequence(seed).spawn(N)[i].generate_state(1)[0])``, the same at
every sweep point. Members are folded into per-point aggregates kept in member
order (metric values in an N x K array, firm-presence as integer counts), so
``ensemble_metrics.csv``, ``targets.json``, the GeoTIFFs and the maps are
byte-identical whatever the number of workers, local or distributed, the
finishing order, or an interruption and ``--resume``.

Memory: the aggregating process keeps only the N x K metric values (K is a few
hundred) and the running per-cell counts; grids and whole runs are never held,
and at most a small window of members is in flight at once.

An existing cluster's workers must be able to import this project (install it
or set ``PYTHONPATH``). When they share the output folder's file system they
write the member files themselves; otherwise each member's file (tens of kB)
comes back through Dask and the aggregating process writes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import layers
from layers import GIS_DATA, InputError

from .fancharts import write_fan_charts
from .outputs import TARGETS_2027, git_commit, package_versions, target_status, write_metrics
from .params import Params
from .scenario import Scenario

FORMAT = 1
"""Version of the member file layout; part of the fingerprint."""

STATS = ("mean", "p5", "p50", "p95")
PERCENTILES = (5.0, 50.0, 95.0)
KEYS = ("year", "metric", "zone", "district", "track")
CODE_EXCLUDED = {"ensemble.py", "fancharts.py", "cli.py", "outputs.py", "bench.py"}
"""Modules that only write outputs or parse arguments: changing them does not change a member."""
MEMBERS = "members"
FINGERPRINT = "fingerprint.json"
PROGRESS_EVERY_S = 30.0
"""Seconds between plain progress lines when stderr is not a terminal."""


# --- seeds and sweep points ---------------------------------------------------------


def member_seeds(seed: int, members: int) -> list[int]:
    """The members' seeds: ``SeedSequence(seed).spawn(members)``, each child turned into one int."""
    return [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(members)]


def sweep_points(spec: Scenario, sweep: Mapping[str, Sequence[float]] | None) -> list[dict[str, Any]]:
    """The cartesian product of the swept values, in the order given; ``[{}]`` without a sweep.

    Unknown names, repeated values and values out of a parameter's range are
    input errors, reported before any work starts.
    """
    if not sweep:
        return [{}]
    for name, values in sweep.items():
        values = list(values)
        if not values:
            raise InputError("arguments", f"--sweep {name}", "no values given")
        if len(set(values)) != len(values):
            raise InputError("arguments", f"--sweep {name}", f"a value is repeated in {values}")
        for value in values:
            try:
                Params().with_overrides({**spec.params, name: value})
            except InputError as exc:
                raise InputError("arguments", f"--sweep {name}", exc.what) from None
    names = list(sweep)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(v) for v in sweep.values()))]


def point_label(point: Mapping[str, Any]) -> str:
    """``name=value_name=value``: the point's part of a file name."""
    return "_".join(f"{name}={value!r}" for name, value in point.items())


# --- the worker side ----------------------------------------------------------------

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
    from .run import simulate

    started = time.perf_counter()
    result = simulate(spec, seed, stack=_stack(spec), firm_years=())
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
    """A finished run reduced to the member file: metric values, target figures, firm-presence bits."""
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
        "occupied": np.stack([np.packbits((snap.revenue > 0).ravel()) for snap in result.years]),
        "targets": np.array(targets[1], dtype=np.float64),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _target_values(result) -> tuple[int | None, list[float]]:
    """The year the 2027 targets are judged in and the member's figures, in TARGETS_2027 order."""
    if result.years[0].year > 2027:
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


# --- reading members back -----------------------------------------------------------


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
    occupied: np.ndarray  # (years, packed bytes) uint8


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
        if arrays["occupied"].shape != (len(years), (cells + 7) // 8) or arrays["occupied"].dtype != np.uint8:
            raise ValueError("firm-presence grids of the wrong size")
        value = arrays["value"].astype(np.float64)
        columns = [arrays["year"]] + [arrays[key] for key in KEYS[1:]]
        if any(len(c) != len(value) for c in columns) or arrays["targets"].shape != (len(TARGETS_2027),):
            raise ValueError("metric columns of different lengths")
        keys = list(zip(arrays["year"].tolist(), *(arrays[key].tolist() for key in KEYS[1:])))
    except KeyError as exc:
        raise ValueError(f"member file lacks {exc}") from None
    return Member(point, member, seed, float(meta.get("seconds", math.nan)), keys, value, meta.get("target_year"),
                  arrays["targets"].astype(np.float64), grid_years, arrays["occupied"])


# --- aggregation --------------------------------------------------------------------


class Aggregate:
    """Running aggregates of every point, filled in member order whatever the finishing order.

    Metric values go into one (members x keys) array per point, the 2027
    figures into (members x targets), and firm presence into integer counts
    per point, year and cell, so nothing depends on which member came first.
    """

    def __init__(self, points: int, members: int, years: list[int], shape: tuple[int, int], scales: list[float] | None = None) -> None:
        self.members, self.years, self.shape = members, years, shape
        self.scales = scales or [1.0] * points
        self.cells = shape[0] * shape[1]
        count_type = np.uint16 if members < 2**16 else np.uint32
        self.counts = np.zeros((points, len(years), self.cells), dtype=count_type)
        self.targets = np.full((points, members, len(TARGETS_2027)), np.nan)
        self.target_year: list[int | None] = [None] * points
        self.seen = np.zeros((points, members), dtype=bool)
        self.seconds = np.full((points, members), np.nan)
        self.index: dict[tuple, int] = {}
        self.reference: list[tuple] | None = None
        self.uniform = True  # every member had the same rows in the same order
        self.values: list[np.ndarray | None] = [None] * points

    def fold(self, m: Member) -> None:
        """Add one member; a member already folded in is ignored."""
        if self.seen[m.point, m.member]:
            return
        if self.reference is None:
            self.reference = list(m.keys)
            self.index = {key: i for i, key in enumerate(m.keys)}
        elif m.keys != self.reference:
            self.uniform = False
            for key in m.keys:
                self.index.setdefault(key, len(self.index))
        columns = np.fromiter((self.index[key] for key in m.keys), dtype=np.int64, count=len(m.keys))
        values = self.values[m.point]
        if values is None or values.shape[1] < len(self.index):
            grown = np.full((self.members, len(self.index)), np.nan)
            if values is not None:
                grown[:, : values.shape[1]] = values
            values = self.values[m.point] = grown
        values[m.member, columns] = m.values
        counts = self.counts[m.point]
        for y in range(len(self.years)):
            counts[y] += np.unpackbits(m.occupied[y], count=self.cells)
        self.targets[m.point, m.member] = m.targets
        self.target_year[m.point] = m.target_year
        self.seconds[m.point, m.member] = m.seconds
        self.seen[m.point, m.member] = True

    @property
    def done(self) -> int:
        return int(self.seen.sum())

    def key_order(self) -> list[tuple]:
        """Rows in the model's order when all members agree, else sorted, so never in arrival order."""
        keys = list(self.index)
        return keys if self.uniform else sorted(keys)

    def table(self, spec: Scenario, seed: int, points: list[dict[str, Any]]) -> pd.DataFrame:
        """ensemble_metrics.csv: per point and row key, the mean and 5th/50th/95th percentiles."""
        order = self.key_order()
        columns = np.array([self.index[key] for key in order], dtype=np.int64)
        keys = pd.DataFrame(order, columns=list(KEYS))
        frames = []
        for p, point in enumerate(points):
            full = np.full((self.members, len(self.index)), np.nan)
            if self.values[p] is not None:
                full[:, : self.values[p].shape[1]] = self.values[p]
            values = np.nan_to_num(full[:, columns], nan=0.0)  # a row a member lacks counts as 0, as in comparisons
            low, mid, high = np.percentile(values, PERCENTILES, axis=0)
            frame = pd.DataFrame({"scenario": spec.name, "seed": seed, "members": self.members}, index=keys.index)
            for name, value in point.items():
                frame[name] = value
            frame = pd.concat([frame, keys], axis=1)
            frame["mean"], frame["p5"], frame["p50"], frame["p95"] = values.mean(axis=0), low, mid, high
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def probability(self, p: int) -> dict[str, np.ndarray]:
        """Per year, the share of members with firms in each cell."""
        return {str(year): (self.counts[p, y].astype(np.float32) / np.float32(self.members)).reshape(self.shape)
                for y, year in enumerate(self.years)}

    def target_report(self, p: int) -> dict[str, Any]:
        """The point's chances against the 2027 targets."""
        values = self.targets[p]
        report: dict[str, Any] = {}
        if self.target_year[p] is None:
            return {"year": None, "note": "the scenario starts after 2027; the 2027 targets do not apply"}
        scale = self.scales[p]
        met_all = np.ones(self.members, dtype=bool)
        for t, (metric, (target, label)) in enumerate(TARGETS_2027.items()):
            met = values[:, t] >= target
            met_all &= met
            low, mid, high = np.percentile(values[:, t], PERCENTILES)
            report[metric] = {
                "label": label, "target": target, "met": int(met.sum()), "members": self.members,
                "probability": float(met.mean()), "probability_ci90": wilson(int(met.sum()), self.members),
                "value_mean": float(values[:, t].mean()), "value_p5": float(low), "value_p50": float(mid), "value_p95": float(high),
            }
        report["all"] = {"label": "all three 2027 targets", "met": int(met_all.sum()), "members": self.members,
                         "probability": float(met_all.mean()), "probability_ci90": wilson(int(met_all.sum()), self.members)}
        out: dict[str, Any] = {"year": self.target_year[p], "targets": report}
        if scale != 1:
            out["note"] = (f"params.scale = {scale:g}: the run simulates that share of the firms and talent, "
                           "so its totals are not comparable with the city's absolute targets")
        return out


def wilson(k: int, n: int, z: float = 1.6448536269514722) -> list[float]:
    """Wilson score interval (90% by default) for k successes in n trials."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


# --- the run ------------------------------------------------------------------------


def run_ensemble(
    spec: Scenario,
    members: int,
    out: str | os.PathLike[str],
    *,
    workers: int = 2,
    scheduler: str | None = None,
    sweep: Mapping[str, Sequence[float]] | None = None,
    resume: bool = False,
    quiet: bool = False,
    seed: int | None = None,
) -> None:
    """Run ``members`` seeded members of ``spec`` (at every sweep point) on Dask and write the ensemble outputs.

    Bad input (a sweep name or value, an unreachable scheduler, a ``--resume``
    over another run's members) raises :class:`layers.InputError` before any
    folder is created or changed.
    """
    started = time.perf_counter()
    if members < 1:
        raise InputError("arguments", "--ensemble", f"must be at least 1, got {members}")
    if workers < 1:
        raise InputError("arguments", "--workers", f"must be at least 1, got {workers}")
    sweep = {name: list(values) for name, values in (sweep or {}).items()}
    points = sweep_points(spec, sweep)
    root = spec.seed if seed is None else int(seed)
    if root < 0:
        raise InputError("arguments", "--seed", f"must be 0 or more, got {root}")
    if spec.source:
        spec = spec.model_copy(update={"source": str(Path(spec.source).resolve())})  # workers may run elsewhere
    specs = [spec if not point else spec.model_copy(update={"params": {**spec.params, **point}}) for point in points]
    seeds = member_seeds(root, members)
    stack = layers.load(**spec.layer_arguments())
    shape = tuple(int(n) for n in stack.grid.shape)
    years = list(range(spec.years.start, spec.years.end + 1))
    fingerprint = _fingerprint(spec, root, members, sweep, shape, stack)
    token = fingerprint["token"]
    out = Path(out).resolve()
    members_dir = out / MEMBERS

    aggregate = Aggregate(len(points), members, years, shape, [Params().with_overrides(s.params).scale for s in specs])
    expected = {"token": token, "shape": shape, "years": years}
    if resume:
        _check_resume(members_dir, fingerprint, out)
        for p, m in itertools.product(range(len(points)), range(members)):
            path = member_file(members_dir, p, m)
            if path.exists():
                with contextlib.suppress(ValueError):
                    aggregate.fold(read_member(path, point=p, member=m, seed=seeds[m], **expected))
    resumed = aggregate.done
    todo = [(p, m) for p, m in itertools.product(range(len(points)), range(members)) if not aggregate.seen[p, m]]
    progress = _Progress(spec.name, len(points) * members, resumed, quiet)
    execution: dict[str, Any] = {"scheduler": scheduler or "LocalCluster", "workers": workers if not scheduler else None,
                                 "resumed_members": resumed, "run_members": len(todo)}
    with _client(workers, scheduler) if todo else contextlib.nullcontext() as client, _Lock(out, members_dir):
        _prepare_members(members_dir, fingerprint, resume, quiet)
        if client is not None:
            execution["worker_threads"] = sum(client.nthreads().values())
            if not execution["worker_threads"] and not quiet:
                print(f"note: no Dask workers at {scheduler} yet; members start as workers join", file=sys.stderr)
            progress.start()
            try:
                _run_members(client, specs, seeds, todo, members_dir, token, aggregate, expected, progress)
            finally:
                progress.close()
        compute_s = time.perf_counter() - started
        _write_outputs(out, spec, root, seeds, sweep, points, aggregate, stack, fingerprint, execution, started, compute_s)
    if not quiet:
        print(summary(spec, root, points, aggregate))
        print(f"wrote {out}/")


def _fingerprint(spec: Scenario, seed: int, members: int, sweep: dict, shape: tuple, stack: layers.LayerStack) -> dict[str, Any]:
    """What the members belong to; its token is stamped into every member file."""
    body = {
        "format": FORMAT,
        "scenario": spec.model_dump(mode="json"),
        "seed": seed,
        "members": members,
        "sweep": sweep,
        "grid_shape": list(shape),
        "code_sha256": code_hash(),
        "inputs_sha256": _input_hashes(spec, stack),
    }
    token = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()
    return {**body, "token": token}


def code_hash() -> str:
    """SHA-256 over the model's source files (twin and layers), leaving out the output-only modules."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in ("layers", "twin"):
        for path in sorted((root / package).glob("*.py")):
            if package == "twin" and path.name in CODE_EXCLUDED:
                continue
            digest.update(f"{package}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _input_hashes(spec: Scenario, stack: layers.LayerStack) -> dict[str, str]:
    """SHA-256 of the input files the members read (as the single-run manifest lists them)."""
    files = dict(stack.files)
    for name in ("anchor_firms.csv", "compute_centres.csv"):
        files[name] = GIS_DATA / name
    hashes = {}
    for key, path in sorted(files.items()):
        path = Path(path)
        if path.exists():
            hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def _check_resume(members_dir: Path, fingerprint: dict[str, Any], out: Path) -> None:
    """Refuse to resume over members of a different scenario, seed, N, sweep, code or inputs."""
    path = members_dir / FINGERPRINT
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: its members will not validate either and are run again
    if old.get("token") == fingerprint["token"]:
        return
    differ = [key for key in fingerprint if key != "token" and old.get(key) != fingerprint[key]] or ["format"]
    raise InputError(out, "--resume", f"the members there belong to another run (different {', '.join(differ)}); "
                     "run without --resume to start afresh, or choose another --out")


def _prepare_members(members_dir: Path, fingerprint: dict[str, Any], resume: bool, quiet: bool) -> None:
    """Create the members folder, drop temporaries of killed runs (and old members unless resuming), write the fingerprint."""
    members_dir.mkdir(parents=True, exist_ok=True)
    for stale in members_dir.glob(".*.tmp-*"):
        stale.unlink(missing_ok=True)
    if not resume:
        old = sorted(members_dir.glob("p*_m*.npz"))
        if old and not quiet:
            print(f"note: starting afresh; removing {len(old)} member files of an earlier run from {members_dir} "
                  "(use --resume to continue it)", file=sys.stderr)
        for path in old:
            path.unlink(missing_ok=True)
    write_atomic(members_dir / FINGERPRINT, json.dumps(fingerprint, ensure_ascii=False, indent=2, sort_keys=True).encode())


class _Lock:
    """An exclusive lock on the output folder, so two runs never write the same members."""

    def __init__(self, out: Path, members_dir: Path) -> None:
        self.out, self.members_dir, self.handle = out, members_dir, None

    def __enter__(self) -> "_Lock":
        self.members_dir.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.members_dir / ".lock", "a+")
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock
            return self
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise InputError(self.out, "--out", "another ensemble run is writing to this folder") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.handle is not None:
            self.handle.close()


@contextlib.contextmanager
def _client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client on a new LocalCluster, or on the scheduler given; closed on success and on error."""
    from distributed import Client, LocalCluster

    if scheduler:
        import dask

        timeout = dask.config.get("distributed.comm.timeouts.connect")
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError("arguments", "--scheduler", f"cannot reach a Dask scheduler at {scheduler} ({reason})") from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 turns off glibc's adaptive mmap threshold, so every
    # large numpy array is mmapped and unmapped afresh: members ran 2-3x slower with it. Leave glibc's default.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    if str(environ.get("MALLOC_TRIM_THRESHOLD_")) == "65536":
        del environ["MALLOC_TRIM_THRESHOLD_"]
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        cluster.close()


def _run_members(client, specs: list[Scenario], seeds: list[int], todo: list[tuple[int, int]], members_dir: Path,
                 token: str, aggregate: Aggregate, expected: dict[str, Any], progress: "_Progress") -> None:
    """Submit members a window at a time and fold each in as it finishes."""
    from distributed import as_completed

    queue = iter(todo)
    completed = as_completed(loop=client.loop)
    state = {"in_flight": 0, "threads": max(1, sum(client.nthreads().values())), "checked": time.monotonic()}

    def window() -> int:
        if time.monotonic() - state["checked"] > 2.0:
            state["threads"] = max(1, sum(client.nthreads().values()))
            state["checked"] = time.monotonic()
        return 2 * state["threads"] + 2

    def top_up() -> None:
        while state["in_flight"] < window():
            item = next(queue, None)
            if item is None:
                return
            p, m = item
            future = client.submit(run_member, specs[p], p, m, seeds[m], str(members_dir), token,
                                   key=f"vvt-member-{token[:12]}-p{p}-m{m}", pure=False)
            completed.add(future)
            state["in_flight"] += 1

    top_up()
    progress.show(state["in_flight"], state["threads"])
    for future in completed:
        state["in_flight"] -= 1
        try:
            result = future.result()
        except Exception as exc:
            raise _member_error(future.key, exc) from exc
        del future
        p, m = result["point"], result["member"]
        path = member_file(members_dir, p, m)
        payload = result.pop("payload", None)
        if payload is not None:
            write_atomic(path, payload)
        aggregate.fold(read_member(payload if payload is not None else path, point=p, member=m, seed=seeds[m], **expected))
        del result, payload
        top_up()
        progress.update(aggregate.done, state["in_flight"], state["threads"])


def _member_error(key: str, exc: BaseException) -> RuntimeError:
    """A member failed: say which, and hint at the usual cause on an existing cluster."""
    text = f"{type(exc).__name__}: {exc}"
    hint = ""
    if "No module named 'twin'" in text or "No module named 'layers'" in text:
        hint = " (the Dask workers cannot import this project: install it on them or set PYTHONPATH)"
    return RuntimeError(f"ensemble member {key} failed: {text}{hint}; finished members are kept, rerun with --resume")


class _Progress:
    """Members done, running and time left on stderr: a bar on a terminal, sparse plain lines otherwise."""

    def __init__(self, name: str, total: int, done: int, quiet: bool) -> None:
        self.name, self.total, self.initial, self.quiet = name, total, done, quiet
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.started = self.last = time.monotonic()

    def start(self) -> None:
        self.started = self.last = time.monotonic()
        if self.quiet:
            return
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.initial, desc=f"{self.name} ensemble", unit="member", file=sys.stderr)
        else:
            resumed = f", {self.initial} already done" if self.initial else ""
            print(f"{self.name} ensemble: {self.total} members{resumed}", file=sys.stderr, flush=True)

    def show(self, in_flight: int, threads: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix(running=min(in_flight, threads), refresh=True)

    def left(self, done: int) -> float | None:
        finished = done - self.initial
        if finished <= 0:
            return None
        return (time.monotonic() - self.started) / finished * (self.total - done)

    def update(self, done: int, in_flight: int, threads: int) -> None:
        if self.quiet:
            return
        running = min(in_flight, threads)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(running=running, refresh=False)
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S and done < self.total:
            self.last = now
            left = self.left(done)
            eta = f", about {_duration(left)} left" if left is not None else ""
            print(f"{self.name} ensemble: {done}/{self.total} members done, {running} running{eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# --- outputs ------------------------------------------------------------------------

OUTPUT_PATTERNS = ("ensemble_metrics.csv", "targets.json", "probability*.tif", "map*.html", "fan_*.png", "manifest.json")


def _write_outputs(out: Path, spec: Scenario, seed: int, seeds: list[int], sweep: dict, points: list[dict],
                   aggregate: Aggregate, stack: layers.LayerStack, fingerprint: dict, execution: dict,
                   started: float, compute_s: float) -> None:
    """Build every output in a staging folder, then move each into ``out/`` by rename (the manifest last)."""
    if aggregate.done != aggregate.seen.size:
        raise RuntimeError(f"only {aggregate.done} of {aggregate.seen.size} members finished")
    for stale in out.glob(".staging-*"):  # left by a run killed while writing its outputs
        shutil.rmtree(stale, ignore_errors=True)
    staging = out / f".staging-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        table = aggregate.table(spec, seed, points)
        write_metrics(table, staging / "ensemble_metrics.csv")
        tifs = []
        for p, point in enumerate(points):
            name = "probability.tif" if not point else f"probability_{point_label(point)}.tif"
            stack.grid.write_geotiff(staging / name, aggregate.probability(p))
            tifs.append(name)
        targets = _targets_json(spec, seed, sweep, points, aggregate, tifs)
        (staging / "targets.json").write_text(json.dumps(targets, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        from . import maps

        for p, point in enumerate(points):
            name = "map.html" if not point else f"map_{point_label(point)}.html"
            point_spec = spec.model_copy(update={"params": {**spec.params, **point}})
            maps.write_probability_map(staging / name, aggregate.probability(p), stack, point_spec, aggregate.members, seed,
                                       targets["points"][p])
        charts = write_fan_charts(table, staging, spec, seed, aggregate.members, points)
        manifest = _manifest(spec, seed, seeds, sweep, points, aggregate, fingerprint, execution, tifs, charts,
                             {"members_and_aggregation": round(compute_s, 3)})
        wanted = {p.name for p in staging.iterdir()} | {"manifest.json"}
        for pattern in OUTPUT_PATTERNS:  # outputs of an earlier run with other points
            for old in out.glob(pattern):
                if old.name not in wanted:
                    old.unlink(missing_ok=True)
        (out / "manifest.json").unlink(missing_ok=True)  # present only when the outputs are complete
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
        manifest["timings_s"]["total"] = round(time.perf_counter() - started, 3)
        write_atomic(out / "manifest.json", (json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n").encode())
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _targets_json(spec: Scenario, seed: int, sweep: dict, points: list[dict], aggregate: Aggregate, tifs: list[str]) -> dict:
    """targets.json: the chance of meeting each 2027 target, per sweep point (no timings: it is reproducible)."""
    report = {
        "scenario": spec.name,
        "seed": seed,
        "members": aggregate.members,
        "rule": "a member meets a target when its figure in 2027 (or the scenario's last year before) is at least the target",
        "sweep": sweep,
        "points": [{"params": point, "probability_tif": tif, **aggregate.target_report(p)} for p, (point, tif) in enumerate(zip(points, tifs))],
    }
    if not sweep:
        report["year"] = report["points"][0]["year"]
        report["targets"] = report["points"][0].get("targets")
    return report


def _manifest(spec: Scenario, seed: int, seeds: list[int], sweep: dict, points: list[dict], aggregate: Aggregate,
              fingerprint: dict, execution: dict, tifs: list[str], charts: list[str], timings: dict) -> dict:
    """What produced the ensemble: scenario, seeds, sweep, execution, timings, versions, hashes."""
    member_s = aggregate.seconds[np.isfinite(aggregate.seconds)]
    timings = dict(timings)
    if member_s.size:
        timings |= {"member_mean": round(float(member_s.mean()), 3), "member_min": round(float(member_s.min()), 3),
                    "member_max": round(float(member_s.max()), 3), "member_sum": round(float(member_s.sum()), 3)}
    return {
        "kind": "ensemble",
        "scenario": spec.model_dump(mode="json"),
        "scenario_file": spec.source,
        "seed": seed,
        "members": aggregate.members,
        "seed_rule": "numpy.random.SeedSequence(seed).spawn(members); member i runs with int(child_i.generate_state(1)[0]), the same at every sweep point",
        "member_seeds": seeds,
        "sweep": sweep,
        "points": [{"index": p, "params": point, "probability_tif": tif} for p, (point, tif) in enumerate(zip(points, tifs))],
        "outputs": {
            "ensemble_metrics.csv": "tidy: scenario, seed (the root seed), members, one column per swept parameter, "
                                    "year, metric, zone, district, track (empty = all), then mean, p5, p50, p95 over the members",
            "targets.json": "per point and 2027 target: members meeting it, probability, Wilson 90% interval, spread of the figures",
            "probability*.tif": "per cell and year (band names = years): share of members with firms in the cell",
            "map*.html": "offline map of probability*.tif (mean over 1 km cells, year slider) with N, seed and the 2027 target chances",
            "fan_*.png": charts,
            "members/": "one file a member (metrics, target figures, bit-packed firm presence per year); fingerprint.json",
        },
        "execution": execution,
        "timings_s": timings,
        "fingerprint_token": fingerprint["token"],
        "code_sha256": fingerprint["code_sha256"],
        "inputs_sha256": fingerprint["inputs_sha256"],
        "versions": package_versions(),
        "git_commit": git_commit(),
        "command": sys.argv,
    }


def summary(spec: Scenario, seed: int, points: list[dict], aggregate: Aggregate) -> str:
    """A short account of the ensemble's chances against the 2027 targets."""
    lines = []
    for p, point in enumerate(points):
        report = aggregate.target_report(p)
        where = f" at {point_label(point)}" if point else ""
        if report["year"] is None:
            lines.append(f"{spec.name} ensemble{where}: {report['note']}")
            continue
        lines.append(f"{spec.name} ensemble{where} (N = {aggregate.members}, seed {seed}), {report['year']} against the 2027 targets:")
        for metric, (target, label) in TARGETS_2027.items():
            t = report["targets"][metric]
            median = f"{t['value_p50'] / 1e8:,.0f} 亿元" if metric.endswith("_cny") else f"{t['value_p50']:.0f}"
            lines.append(f"  {label:<38} P(met) {t['probability']:>6.1%} ({t['met']}/{t['members']}, 90% CI "
                         f"{t['probability_ci90'][0]:.0%}-{t['probability_ci90'][1]:.0%}), median {median}")
        a = report["targets"]["all"]
        lines.append(f"  {'all three':<38} P(met) {a['probability']:>6.1%} ({a['met']}/{a['members']})")
        if "note" in report:
            lines.append(f"  note: {report['note']}")
    return "\n".join(lines)
