"""Ensembles on Dask distributed: many seeded members of a scenario (and sweeps), folded in as they finish.

``python run_scenario.py SCENARIO --ensemble N [--workers W | --scheduler tcp://HOST:PORT]
[--sweep NAME=V1,V2,...] [--resume] [--seed S]`` runs N members of the scenario,
each with its own seed, on a Dask ``LocalCluster`` of W single-threaded worker
processes or on an existing Dask cluster, and writes into ``out/``:

``members/``
    One ``p<point>_m<member>.npz`` per finished member, written atomically by
    the worker (temporary name, then rename): the member's tidy metric
    values, its figures against the 2027 targets and, per year, the bit-packed
    grid of cells holding firms, with a checksum of that content (a member
    changed after it was written is run again). ``fingerprint.json`` says what the members
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
    Per cell and year, the share of members in which the cell's revenue exceeds
    its base-year revenue, P(growth); zero in the base year (float32, one band a year, bands named by year). With a sweep, one file a
    point: ``probability_<name>=<value>[_<name>=<value>...].tif``.
``map.html``
    The offline interactive map (:func:`twin.maps.write_probability_map`) of
    ``probability.tif`` after the base year: per year (slider, play/pause),
    the mean P(growth) over each 1 km cell, over the base map, districts and
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
import itertools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import layers
from layers import InputError

from ..engine.params import Params
from ..engine.targets import TARGETS_2027
from ..outputs.charts import write_fan_charts
from ..outputs.folder import atomic_folder, check_target
from ..outputs.manifest import manifest, run_record, write_json, write_manifest
from ..outputs.rasters import write_geotiff
from ..outputs.summary import figure, report, target_label
from ..outputs.tables import write_csv
from ..policy.scenario import Scenario
from .aggregate import Aggregate
from ..outputs.progress import Members, stage
from .cluster import dask_client, run_members
from .members import FINGERPRINT, MEMBERS, member_file, read_member
from .resume import OutputLock, check_resume, make_fingerprint, prepare_members
from .seeds import MemberSpec, member_seeds, point_label, sweep_points

RESUMABLE = f"{MEMBERS}/{FINGERPRINT}"
"""What makes a folder an ensemble's own before its first output is written: its member store."""


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
    member: MemberSpec = MemberSpec(),
    lang: str = "zh",
) -> None:
    """Run ``members`` seeded members of ``spec`` (at every sweep point) on Dask and write the ensemble outputs.

    ``member`` says what each member draws beside its seed (the same at every point).

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
    fingerprint = make_fingerprint(spec, root, members, sweep, shape, stack, member.as_dict())
    token = fingerprint["token"]
    out = check_target(Path(out).resolve(), allow=(RESUMABLE,))
    members_dir = out / MEMBERS

    aggregate = Aggregate(len(points), members, years, shape, [Params().with_overrides(s.params).scale for s in specs])
    expected = {"token": token, "shape": shape, "years": years}
    if resume:
        check_resume(members_dir, fingerprint, out)
        for p, m in itertools.product(range(len(points)), range(members)):
            path = member_file(members_dir, p, m)
            if path.exists():
                with contextlib.suppress(ValueError):
                    aggregate.fold(read_member(path, point=p, member=m, seed=seeds[m], **expected))
    resumed = aggregate.done
    todo = [(p, m) for p, m in itertools.product(range(len(points)), range(members)) if not aggregate.seen[p, m]]
    progress = Members(spec.name, len(points) * members, resumed, quiet)
    execution: dict[str, Any] = {"scheduler": scheduler or "LocalCluster", "workers": workers if not scheduler else None,
                                 "resumed_members": resumed, "run_members": len(todo)}
    with dask_client(workers, scheduler) if todo else contextlib.nullcontext() as client, OutputLock(out, members_dir):
        prepare_members(members_dir, fingerprint, resume, quiet)
        if client is not None:
            execution["worker_threads"] = sum(client.nthreads().values())
            if not execution["worker_threads"] and not quiet:
                print(f"note: no Dask workers at {scheduler} yet; members start as workers join", file=sys.stderr)
            progress.start()
            try:
                run_members(client, specs, seeds, todo, members_dir, token, aggregate, expected, progress, member)
            finally:
                progress.close()
        compute_s = time.perf_counter() - started
        stage("writing ensemble_metrics.csv, targets.json, the probability maps and the fan charts")
        _write_outputs(out, spec, root, seeds, sweep, points, aggregate, stack, fingerprint, execution, started, compute_s, member)
    report(summary(spec, root, points, aggregate, member, lang), out, quiet=quiet, opens="map.html" if not points[0] else f"map_{point_label(points[0])}.html")


def _write_outputs(out: Path, spec: Scenario, seed: int, seeds: list[int], sweep: dict, points: list[dict],
                   aggregate: Aggregate, stack: layers.LayerStack, fingerprint: dict, execution: dict,
                   started: float, compute_s: float, member: MemberSpec) -> None:
    """Build every output in a new folder and swap it in for ``out`` whole, carrying the member store along."""
    if aggregate.done != aggregate.seen.size:
        raise RuntimeError(f"only {aggregate.done} of {aggregate.seen.size} members finished")
    with atomic_folder(out, allow=(RESUMABLE,), carry=True) as folder:
        table = aggregate.table(spec, seed, points)
        write_csv(table, folder / "ensemble_metrics.csv")
        tifs = []
        for p, point in enumerate(points):
            name = "probability.tif" if not point else f"probability_{point_label(point)}.tif"
            write_geotiff(stack.grid, folder / name, aggregate.probability(p))
            tifs.append(name)
        targets = _targets_json(spec, seed, sweep, points, aggregate, tifs, member)
        write_json(folder / "targets.json", targets)
        from ..outputs import maps

        for p, point in enumerate(points):
            name = "map.html" if not point else f"map_{point_label(point)}.html"
            point_spec = spec.model_copy(update={"params": {**spec.params, **point}})
            growth = {y: g for y, g in aggregate.probability(p).items() if int(y) > aggregate.years[0]} or aggregate.probability(p)
            maps.write_probability_map(folder / name, growth, stack, point_spec, aggregate.members, seed,
                                       targets["points"][p])
        charts = write_fan_charts(table, folder, spec, seed, aggregate.members, points)
        content = _manifest(spec, seed, seeds, sweep, points, aggregate, stack, fingerprint, execution, tifs, charts, member,
                            {"members_and_aggregation": round(compute_s, 3)})
        content["timings_s"]["total"] = round(time.perf_counter() - started, 3)
        write_manifest(folder, content)


def _targets_json(spec: Scenario, seed: int, sweep: dict, points: list[dict], aggregate: Aggregate, tifs: list[str],
                  member: MemberSpec) -> dict:
    """targets.json: the chance of meeting each 2027 target, per sweep point (no timings: it is reproducible)."""
    report = {
        "scenario": spec.name,
        "seed": seed,
        "members": aggregate.members,
        "uncertainty": member.uncertainty(spec),
        "draws": member.as_dict(),
        "rule": "a member meets a target when its figure in 2027 (or the scenario's last year before) is at least the target",
        "sweep": sweep,
        "points": [{"params": point, "probability_tif": tif, **aggregate.target_report(p)} for p, (point, tif) in enumerate(zip(points, tifs))],
    }
    if not sweep:
        report["year"] = report["points"][0]["year"]
        report["targets"] = report["points"][0].get("targets")
    return report


def _manifest(spec: Scenario, seed: int, seeds: list[int], sweep: dict, points: list[dict], aggregate: Aggregate,
              stack: layers.LayerStack, fingerprint: dict, execution: dict, tifs: list[str], charts: list[str],
              member: MemberSpec, timings: dict) -> dict:
    """What produced the ensemble: scenario, seeds, sweep, execution, timings, versions, hashes."""
    member_s = aggregate.seconds[np.isfinite(aggregate.seconds)]
    timings = dict(timings)
    if member_s.size:
        timings |= {"member_mean": round(float(member_s.mean()), 3), "member_min": round(float(member_s.min()), 3),
                    "member_max": round(float(member_s.max()), 3), "member_sum": round(float(member_s.sum()), 3)}
    return manifest(
        "ensemble", [run_record(spec, seed, stack)],
        seed=seed,
        members=aggregate.members,
        seed_rule="numpy.random.SeedSequence(seed).spawn(members); member i runs with int(child_i.generate_state(1)[0]), the same at every sweep point",
        uncertainty=member.uncertainty(spec),
        draws=member.as_dict(),
        member_seeds=seeds,
        sweep=sweep,
        points=[{"index": p, "params": point, "probability_tif": tif} for p, (point, tif) in enumerate(zip(points, tifs))],
        outputs={
            "ensemble_metrics.csv": "tidy: scenario, seed (the root seed), members, one column per swept parameter, "
                                    "year, metric, zone, district, track (empty = all), then mean, p5, p50, p95 over the members",
            "targets.json": "per point and 2027 target: members meeting it, probability, Wilson 90% interval, spread of the figures",
            "probability*.tif": "per cell and year (band names = years): share of members whose revenue in the cell exceeds the base year's",
            "map*.html": "offline map of probability*.tif (mean over 1 km cells, year slider) with N, seed and the 2027 target chances",
            "fan_*.png": charts,
            "members/": "one file a member (metrics, target figures, bit-packed firm presence per year, content checksum); fingerprint.json",
        },
        execution=execution,
        timings_s=timings,
        fingerprint_token=fingerprint["token"],
        code_sha256=fingerprint["code_sha256"],
    )


def summary(spec: Scenario, seed: int, points: list[dict], aggregate: Aggregate, member: MemberSpec, lang: str = "zh") -> str:
    """A short account of the ensemble's chances against the 2027 targets (money in ``lang``'s unit), and which uncertainty they count."""
    lines = []
    width = max(len(target_label(metric, lang)) for metric in TARGETS_2027)
    for p, point in enumerate(points):
        report = aggregate.target_report(p)
        where = f" at {point_label(point)}" if point else ""
        if report["year"] is None:
            lines.append(f"{spec.name} ensemble{where}: {report['note']}")
            continue
        lines.append(f"{spec.name} ensemble{where} (N = {aggregate.members}, seed {seed}), {report['year']} against the 2027 targets:")
        for metric in TARGETS_2027:
            t = report["targets"][metric]
            median = figure(metric, t["value_p50"], lang)
            lines.append(f"  {target_label(metric, lang):<{width}} P(met) {t['probability']:>6.1%} ({t['met']}/{t['members']}, 90% CI "
                         f"{t['probability_ci90'][0]:.0%}-{t['probability_ci90'][1]:.0%}), median {median}")
        a = report["targets"]["all"]
        lines.append(f"  {'all three':<{width}} P(met) {a['probability']:>6.1%} ({a['met']}/{a['members']})")
        if "note" in report:
            lines.append(f"  note: {report['note']}")
    lines.append(f"  intervals count {member.uncertainty(spec)}")
    return "\n".join(lines)
