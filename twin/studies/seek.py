"""Goal seeking: the cheapest lever settings that give a good chance of the 2027 targets.

``python run_scenario.py SCENARIO --seek [--trials T] [--ensemble N]
[--probability P]`` searches the lever settings the scenario's ``seek:``
section allows (:mod:`twin.policy.seek`: money fields within bounds, start
years, target zones, levers on or off) with optuna's NSGA-II sampler on two
objectives, total public spend (minimised) and P(all three 2027 targets)
(maximised), with the constraint P >= P. Every trial runs the same N member
seeds (paired), so trials differ by their settings, not by their luck.

Trials run ``BATCH`` at a time on Dask; each (trial, member) is a member file
under ``members/batch<b>/`` with its own fingerprint (scenario, seeds and the
batch's settings). The sampler is seeded and told results in trial order, so a
rerun with ``--resume`` asks the same settings again, finds their member
files and runs only what is missing: same seed, same bytes.

At ``params.scale < 1`` the run holds that share of the city's other firms and
the anchors at their real size, so every member's figures are judged as
full-city estimates (anchors + other firms / scale, :func:`twin.engine.targets.full_scale`)
against the absolute targets, and the summary says so.

Writes ``out/<name>_seek/``: ``pareto.csv`` (one row a trial), ``best.yaml``
(a scenario extending SCENARIO: the cheapest trial meeting the probability,
else the most probable), ``pareto.png`` and ``manifest.json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import layers
from layers import InputError

from ..engine.params import Params
from ..engine.targets import LAST_TARGET_YEAR, TARGETS_2027
from ..outputs.progress import stage
from ..outputs.folder import atomic_folder, check_target, write_file
from ..outputs.manifest import manifest, run_record, write_manifest
from ..outputs.summary import note as summary_note
from ..outputs.summary import estimate_note, money, report
from ..outputs.tables import write_csv
from ..policy.hook import lever_labels
from ..policy.scenario import Scenario
from ..policy.seek import MONEY_FIELDS, SeekLever
from .cluster import dask_client
from .coalitions import Panel, run_variants
from .members import MEMBERS
from .seeds import MemberSpec

BATCH = 4
"""Trials asked of the sampler at once (fixed, so the settings tried never depend on the cluster's size)."""
RESUMABLE = f"{MEMBERS}/batch0000/fingerprint.json"
"""What makes a folder a search's own before its first output is written: its first batch's member store."""


def space(spec: Scenario) -> list[SeekLever]:
    """The scenario's ``seek.levers``, or the documented defaults, checked against its levers."""
    where = spec.source or spec.name
    last = min(LAST_TARGET_YEAR, spec.years.end)
    if not spec.seek.levers:
        entries = []
        for i, lever in enumerate(spec.levers):
            field = MONEY_FIELDS.get(lever.kind)
            value = float(getattr(lever, field)) if field else 0.0
            fields = {field: {"low": 0.0, "high": 2 * value}} if field and value > 0 else {}
            entries.append(SeekLever(lever=i, fields=fields, start_year=(spec.years.start, max(spec.years.start, last))))
        return entries
    for n, entry in enumerate(spec.seek.levers):
        if entry.lever >= len(spec.levers):
            raise InputError(where, f"seek.levers.{n}.lever", f"there is no lever {entry.lever}; the scenario has {len(spec.levers)}")
        lever = spec.levers[entry.lever]
        for name in entry.fields:
            if not isinstance(getattr(lever, name, None), (int, float)) or isinstance(getattr(lever, name), bool):
                raise InputError(where, f"seek.levers.{n}.fields.{name}", f"{lever.kind} has no numeric field {name!r}")
        if entry.start_year and not spec.years.start <= entry.start_year[0] <= entry.start_year[1] <= spec.years.end:
            raise InputError(where, f"seek.levers.{n}.start_year", f"must be ordered years within {spec.years.start}-{spec.years.end}")
        if entry.zones and not hasattr(lever, "zones"):
            raise InputError(where, f"seek.levers.{n}.zones", f"{lever.kind} has no zones")
    return list(spec.seek.levers)


def suggest(trial: Any, spec: Scenario, entries: list[SeekLever]) -> tuple[Scenario, dict[str, Any]]:
    """The trial's lever settings: the scenario variant and its decision variables by name."""
    levers = list(spec.levers)
    chosen: dict[str, Any] = {}
    off = set()
    labels = lever_labels(spec.levers)
    for entry in entries:
        lever, prefix = levers[entry.lever], labels[entry.lever]
        update: dict[str, Any] = {}
        if entry.optional:
            chosen[f"{prefix}.on"] = trial.suggest_categorical(f"{prefix}.on", [True, False])
            if not chosen[f"{prefix}.on"]:
                off.add(entry.lever)
        for name, bounds in entry.fields.items():
            update[name] = chosen[f"{prefix}.{name}"] = trial.suggest_float(f"{prefix}.{name}", bounds.low, bounds.high, log=bounds.log)
        if entry.start_year:
            update["start_year"] = chosen[f"{prefix}.start_year"] = trial.suggest_int(f"{prefix}.start_year", *entry.start_year)
        if entry.zones:
            pick = trial.suggest_categorical(f"{prefix}.zones", ["+".join(z) or "all" for z in entry.zones])
            chosen[f"{prefix}.zones"] = pick
            update["zones"] = [] if pick == "all" else pick.split("+")
        levers[entry.lever] = type(lever).model_validate({**lever.model_dump(), **update})
    variant = spec.model_copy(update={"levers": [lever for i, lever in enumerate(levers) if i not in off]})
    return variant, chosen


def judged_targets(spec: Scenario) -> tuple[np.ndarray, str]:
    """The absolute 2027 targets the trials' full-city estimates are judged against, and a note below params.scale 1."""
    scale = Params().with_overrides(spec.params).scale
    targets = np.array([target for target, _ in TARGETS_2027.values()], dtype=np.float64)
    return targets, "" if scale >= 1 else estimate_note(scale)


def score(panel: Panel, variant: int, targets: np.ndarray, year: int) -> dict[str, float]:
    """A trial's mean public spend to ``year`` and its chance of meeting each target and all three."""
    met = panel.targets[variant] >= targets
    spend = panel.spend(variant, year)
    row = {"cost_cny": 0.0 if spend is None else float(spend.mean()), "p_all_targets": float(met.all(axis=1).mean())}
    row |= {f"p_{metric}": float(met[:, t].mean()) for t, metric in enumerate(TARGETS_2027)}
    return row


def seek(spec: Scenario, members: int, out: str | os.PathLike[str], *, trials: int | None = None, probability: float | None = None,
         workers: int = 2, scheduler: str | None = None, resume: bool = False, quiet: bool = False, seed: int | None = None,
         member: MemberSpec = MemberSpec(), lang: str = "zh") -> pd.DataFrame:
    """Run the search (every trial's members drawing by ``member``) and write pareto.csv, best.yaml, pareto.png and manifest.json."""
    import optuna

    started = time.perf_counter()
    trials = trials or spec.seek.trials
    probability = spec.seek.probability if probability is None else probability
    if trials < 1 or not 0 <= probability <= 1:
        raise InputError("arguments", "--trials/--probability", "need trials >= 1 and a probability between 0 and 1")
    if not spec.levers:
        raise InputError(spec.source or spec.name, "levers", "--seek needs a scenario with levers to vary")
    entries = space(spec)
    root = spec.seed if seed is None else int(seed)
    targets, note = judged_targets(spec)
    year = min(LAST_TARGET_YEAR, spec.years.end)
    out = check_target(Path(out).resolve(), allow=(RESUMABLE,))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(seed=root, population_size=max(2, min(BATCH * 4, trials)))
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    rows: list[dict[str, Any]] = []
    variants: list[Scenario] = []
    with dask_client(workers, scheduler) as client:
        for batch, first in enumerate(range(0, trials, BATCH)):
            asked = [study.ask() for _ in range(min(BATCH, trials - first))]
            picks = [suggest(trial, spec, entries) for trial in asked]
            panel = run_variants(spec, [v for v, _ in picks], members, out, kind={"seek": [c for _, c in picks]}, seed=root,
                                 workers=workers, scheduler=scheduler, resume=resume, quiet=quiet, member=member,
                                 members_dir=out / MEMBERS / f"batch{batch:04d}", client=client)
            for i, (trial, (variant, chosen)) in enumerate(zip(asked, picks)):
                row = {"trial": trial.number} | score(panel, i, targets, year) | chosen
                trial.set_constraint("p_all_targets", probability - row["p_all_targets"])
                study.tell(trial, [row["cost_cny"], row["p_all_targets"]])
                rows.append(row)
                variants.append(variant)
    table = pd.DataFrame(rows)
    table["meets_probability"] = table["p_all_targets"] >= probability
    table["pareto"] = pareto_front(table)
    best = pick_best(table)
    stage("writing pareto.csv, best.yaml and pareto.png")
    _write(out, spec, table, variants[best], probability, note, members, root, member)
    report(summary(spec, table, best, probability, members, note, year, lang) + f"\n  probabilities count {member.uncertainty(spec)}",
           out, quiet=quiet, opens="best.yaml", timing=f"{time.perf_counter() - started:.1f} s for {trials} trials x {members} members")
    return table


def pareto_front(table: pd.DataFrame) -> np.ndarray:
    """True for trials no other trial beats on both cost (lower) and P(all targets) (higher)."""
    cost, chance = table["cost_cny"].to_numpy(), table["p_all_targets"].to_numpy()
    better = (cost[None, :] <= cost[:, None]) & (chance[None, :] >= chance[:, None])
    strictly = (cost[None, :] < cost[:, None]) | (chance[None, :] > chance[:, None])
    return ~(better & strictly).any(axis=1)


def pick_best(table: pd.DataFrame) -> int:
    """The cheapest trial meeting the probability (first by trial number on ties), else the most probable then cheapest."""
    feasible = table[table["meets_probability"]]
    if len(feasible):
        return int(feasible.sort_values(["cost_cny", "trial"], kind="stable").index[0])
    return int(table.sort_values(["p_all_targets", "cost_cny", "trial"], ascending=[False, True, True], kind="stable").index[0])


def best_yaml(spec: Scenario, variant: Scenario, out: Path) -> str:
    """A scenario file extending SCENARIO with the chosen levers (lists replace the parent's whole) and the default seek bounds."""
    parent = os.path.relpath(Path(spec.source).resolve(), out) if spec.source else spec.name
    data = {"extends": parent, "name": f"{spec.name}_best",
            "description": f"goal seeking's pick for {spec.name} (run_scenario.py --seek)",
            "levers": [lever.model_dump(mode="json") for lever in variant.levers],
            "seek": {"levers": []}}  # the parent's seek entries name levers by position, which the pick may have removed
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _write(out: Path, spec: Scenario, table: pd.DataFrame, variant: Scenario, probability: float, note: str,
           members: int, seed: int, member: MemberSpec) -> None:
    """pareto.csv, best.yaml, pareto.png and manifest.json, swapped in for ``out`` whole (the member store carried along)."""
    from ..outputs.waterfall import write_pareto

    stack = layers.load(**spec.layer_arguments())
    with atomic_folder(out, allow=(RESUMABLE,), carry=True) as folder:
        write_csv(table, folder / "pareto.csv")
        write_file(folder / "best.yaml", best_yaml(spec, variant, out))
        write_pareto(folder / "pareto.png", spec, table, probability)
        write_manifest(folder, manifest("seek", [run_record(spec, seed, stack)], seed=seed, members=members,
                                        probability=probability, batch=BATCH, sampler="optuna NSGAIISampler(seed)",
                                        targets_note=note, uncertainty=member.uncertainty(spec), draws=member.as_dict()))


def summary(spec: Scenario, table: pd.DataFrame, best: int, probability: float, members: int, note: str, year: int,
            lang: str = "zh") -> str:
    """Plainly: are the targets reachable within the bounds, at what cost (in ``lang``'s unit), with which settings."""
    row = table.loc[best]
    settings = ", ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                         for k in table.columns if "#" in k)
    head = f"{spec.name} goal seeking ({len(table)} trials x N = {members} paired members, judged in {year}):"
    if row["meets_probability"]:
        verdict = (f"  reachable within the bounds: P(all three targets) = {row['p_all_targets']:.0%} >= {probability:.0%} "
                   f"at a public cost of {money(row['cost_cny'], lang, digits=2)} (trial {row['trial']})")
    else:
        verdict = (f"  NOT reachable within the bounds at P >= {probability:.0%}: the most probable trial ({row['trial']}) "
                   f"gives P(all three targets) = {row['p_all_targets']:.0%} at {money(row['cost_cny'], lang, digits=2)}; best.yaml holds it")
    lines = [head, verdict, f"  settings: {settings}",
             "  per target: " + ", ".join(f"{m} {row[f'p_{m}']:.0%}" for m in TARGETS_2027)]
    if (table["cost_cny"] == 0).all():
        lines.append(summary_note("the runs report no spend rows (level=lever, metric=spend_cny), so every cost is 0"))
    if note:
        lines.append(summary_note(note))
    return "\n".join(lines)
