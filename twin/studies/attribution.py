"""Which lever bought the growth, and where: Shapley values over a scenario's levers on paired seeds.

``python run_scenario.py SCENARIO --attribute [--ensemble N]`` runs the
scenario with every subset of its levers (``coalitions``), each on the same N
member seeds, on Dask with resume, and writes ``out/<name>_attribution/``:

``attribution.csv``
    Tidy: ``scenario, seed, members, lever, year, metric, zone, district,
    track, value, low, high, se_sampling``. ``lever`` is the lever's label
    (:func:`twin.policy.hook.lever_labels`, as ``levers_set`` takes it), then `` title`` where the lever has
    one, or ``all``: the scenario minus the same scenario with no levers on
    the same seeds. ``value`` is the mean over the members of each member's
    Shapley value; ``low``/``high`` a 90% t interval of that mean over the
    members (paired: every subset ran the same seeds); ``se_sampling`` the
    standard error of the sampled permutations (0 when exact). City rows have
    zone, district and track empty; zone, district and track rows have one set.
``attribution.png``
    The waterfall of core revenue in the judged year (2027, or the last year
    before it) from no levers to all levers, a bar a lever.
``attribution_map.html``
    One layer a lever (and ``all``): the core revenue difference it caused in
    the judged year on each 1 km cell, in CNY per km² (the Shapley value per
    cell over the members' mean cell revenue, with the same subsets and
    weights as the table, so the lever layers add up to ``all`` on every
    cell), with district outlines and each zone's and district's value per km².

Exact Shapley values over all 2**k subsets for k <= ``EXACT_LEVERS``; above
that, ``PERMUTATIONS`` random orders (seeded by the root seed), each running
the k + 1 prefixes of its order. Either way the lever values add up to
``all`` exactly for every member (efficiency), because every subset ran the
same seeds.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import layers
from layers import InputError

from ..engine.targets import TARGETS_2027
from ..outputs import progress
from ..outputs.folder import atomic_folder, check_target
from ..outputs.manifest import manifest, run_record, write_manifest
from ..outputs.summary import money, note, report, scale_note
from ..outputs.tables import write_csv
from ..policy.hook import lever_labels
from ..policy.evidence import no_evidence
from ..policy.scenario import Scenario
from .coalitions import Panel, run_variants, subset_spec
from .seeds import MemberSpec

EXACT_LEVERS = 8
"""Up to this many levers every subset runs (2**8 = 256 subsets x N members)."""
PERMUTATIONS = 48
"""Random lever orders sampled above ``EXACT_LEVERS``."""
RESUMABLE = "members/fingerprint.json"
"""What makes a folder an attribution's own before its first output is written: its member store."""


def lever_label(spec: Scenario, i: int) -> str:
    """The lever's label (:func:`twin.policy.hook.lever_labels`), then its title where it has one."""
    lever = spec.levers[i]
    title = getattr(lever, "title", None)
    text = (getattr(title, "en", "") or getattr(title, "zh", "")) if title is not None and not isinstance(title, str) else title
    return lever_labels(spec.levers)[i] + (f" {text}" if text else "")


def coalitions(levers: int, seed: int) -> tuple[list[tuple[int, ...]], list[list[int]] | None]:
    """The subsets to run and, when sampling, the lever orders (``None`` when exact)."""
    if levers <= EXACT_LEVERS:
        subsets = [s for size in range(levers + 1) for s in itertools.combinations(range(levers), size)]
        return subsets, None
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    orders = [rng.permutation(levers).tolist() for _ in range(PERMUTATIONS)]
    subsets = {tuple(sorted(order[:j])) for order in orders for j in range(levers + 1)}
    return sorted(subsets, key=lambda s: (len(s), s)), orders


def shapley(values: dict[tuple[int, ...], np.ndarray], levers: int, orders: list[list[int]] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per lever, the Shapley values (same shape as each subset's values) and their sampling standard error."""
    shape = next(iter(values.values())).shape
    phi = np.zeros((levers, *shape))
    if orders is None:
        for i in range(levers):
            others = [j for j in range(levers) if j != i]
            for size in range(levers):
                weight = math.factorial(size) * math.factorial(levers - size - 1) / math.factorial(levers)
                for s in itertools.combinations(others, size):
                    phi[i] += weight * (values[tuple(sorted((*s, i)))] - values[s])
        return phi, np.zeros_like(phi)
    draws = np.zeros((len(orders), levers, *shape))
    for o, order in enumerate(orders):
        for j, i in enumerate(order):
            draws[o, i] = values[tuple(sorted(order[: j + 1]))] - values[tuple(sorted(order[:j]))]
    return draws.mean(axis=0), draws.std(axis=0, ddof=1) / math.sqrt(len(orders))


def spend(panel: Panel, variant: int, label: str, year: int) -> tuple[float, str]:
    """A lever's public spend to ``year`` (mean over members), or 0 with a note when the runs report none for it."""
    values = panel.spend(variant, year, label)
    return (0.0, "no spend rows reported") if values is None else (float(values.mean()), "")


def interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 90% t interval of the mean over the first axis (members); NaN with one member."""
    n = samples.shape[0]
    if n < 2:
        nan = np.full(samples.shape[1:], np.nan)
        return nan, nan
    from scipy.stats import t

    half = t.ppf(0.95, n - 1) * samples.std(axis=0, ddof=1) / math.sqrt(n)
    mean = samples.mean(axis=0)
    return mean - half, mean + half


def attribute(spec: Scenario, members: int, out: str | os.PathLike[str], *, workers: int = 2, scheduler: str | None = None,
              resume: bool = False, quiet: bool = False, seed: int | None = None, member: MemberSpec = MemberSpec(),
              lang: str = "zh") -> pd.DataFrame:
    """Run every subset of the scenario's levers on N paired members (each drawing by ``member``) and write the outputs."""
    started = time.perf_counter()
    if not spec.levers:
        raise InputError(spec.source or "scenario", "levers", "--attribute needs a scenario with levers")
    root = spec.seed if seed is None else int(seed)
    k = len(spec.levers)
    subsets, orders = coalitions(k, root)
    out = check_target(Path(out).resolve(), allow=(RESUMABLE,))
    kind = {"attribution": [list(s) for s in subsets]}
    panel = run_variants(spec, [subset_spec(spec, s) for s in subsets], members, out, kind=kind, seed=root,
                         workers=workers, scheduler=scheduler, resume=resume, quiet=quiet, member=member)
    table, costs = _table(spec, root, members, panel, subsets, orders)
    progress.stage("writing attribution.csv, attribution.png and attribution_map.html")
    _write(out, spec, table, costs, panel, subsets, orders, root, member)
    report(summary(spec, table, costs, members, orders is not None, lang) + f"\n  intervals count {member.uncertainty(spec)}", out,
           quiet=quiet, opens="attribution_map.html", timing=f"{time.perf_counter() - started:.1f} s for {len(subsets)} subsets x {members} members")
    return table


def _table(spec: Scenario, seed: int, members: int, panel: Panel, subsets: list[tuple[int, ...]],
           orders: list[list[int]] | None) -> tuple[pd.DataFrame, dict[str, tuple[float, str]]]:
    """attribution.csv's rows and each lever's spend."""
    frames = {s: panel.frame(p) for p, s in enumerate(subsets)}
    keys = sorted(set().union(*(f.columns for f in frames.values())), key=lambda c: tuple(map(str, c)))
    keys = [c for c in keys if c[1] != "lever"]  # spend rows are costs, reported per lever below
    values = {s: f.reindex(columns=pd.MultiIndex.from_tuples(keys, names=f.columns.names), fill_value=0.0).to_numpy()
              for s, f in frames.items()}
    k = len(spec.levers)
    phi, se = shapley(values, k, orders)
    total = values[tuple(range(k))] - values[()]
    labels = [lever_label(spec, i) for i in range(k)]
    blocks = []
    for label, samples, error in [*zip(labels, phi, se), ("all", total, np.zeros_like(total[0]))]:
        low, high = interval(samples)
        block = pd.DataFrame(keys, columns=list(frames[()].columns.names)).drop(columns=["level", "lever"])
        block.insert(0, "lever", label)
        block["value"], block["low"], block["high"] = samples.mean(axis=0), low, high
        block["se_sampling"] = error.mean(axis=0) if error.ndim > 1 else error
        blocks.append(block)
    table = pd.concat(blocks, ignore_index=True)
    table.insert(0, "members", members)
    table.insert(0, "seed", seed)
    table.insert(0, "scenario", spec.name)
    table = table[["scenario", "seed", "members", "lever", "year", "metric", "zone", "district", "track", "value", "low", "high", "se_sampling"]]
    year = judged_year(spec)
    full = subsets.index(tuple(range(k)))
    costs = {label: spend(panel, full, short, year) for label, short in zip(labels, lever_labels(spec.levers))}
    return table, costs


def judged_year(spec: Scenario) -> int:
    """2027, or the scenario's last year when it ends before."""
    return min(2027, spec.years.end)


def headline(table: pd.DataFrame, year: int, metric: str = "revenue_cny") -> pd.DataFrame:
    """City rows of one metric in one year, a row a lever (``all`` last)."""
    rows = table[(table["year"].astype(int) == year) & (table["metric"] == metric)
                 & (table["zone"] == "") & (table["district"] == "") & (table["track"] == "")]
    return rows.set_index("lever")


def cell_layers(spec: Scenario, panel: Panel, subsets: list[tuple[int, ...]], orders: list[list[int]] | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The map cells with firms and, per lever label then ``all``, its Shapley value of their judged-year revenue (CNY)."""
    used, means = panel.cell_means()
    values = {s: means[p] for p, s in enumerate(subsets)}
    k = len(spec.levers)
    phi, _ = shapley(values, k, orders)
    layers = {lever_label(spec, i): phi[i] for i in range(k)}
    layers["all"] = values[tuple(range(k))] - values[()]
    return used, layers


def _write(out: Path, spec: Scenario, table: pd.DataFrame, costs: dict, panel: Panel, subsets: list,
           orders: list[list[int]] | None, seed: int, member: MemberSpec) -> None:
    """attribution.csv, attribution.png, attribution_map.html and the manifest, swapped in for ``out`` whole
    (the member store carried along)."""
    from ..outputs.maps.attribution import write_attribution_map
    from ..outputs.waterfall import write_waterfall
    from .members import map_factor

    stack = layers.load(**spec.layer_arguments())
    with atomic_folder(out, allow=(RESUMABLE,), carry=True) as folder:
        write_csv(table, folder / "attribution.csv")
        year = judged_year(spec)
        rows = headline(table, year)
        base = float(np.mean([row.get((year, "city", "revenue_cny", "", "", "", ""), 0.0) for row in panel.values[0]]))
        write_waterfall(folder / "attribution.png", spec, year, base, rows["value"].drop("all").to_dict())
        used, values = cell_layers(spec, panel, subsets, orders)
        write_attribution_map(folder / "attribution_map.html", spec, table, year, stack, used, map_factor(stack.grid), values)
        write_manifest(folder, manifest("attribution", [run_record(spec, seed, stack)], members=panel.members,
                                        subsets=[list(s) for s in subsets],
                                        costs_cny={k: {"spend_cny": v, "note": n} for k, (v, n) in costs.items()},
                                        uncertainty=member.uncertainty(spec), draws=member.as_dict()))


def summary(spec: Scenario, table: pd.DataFrame, costs: dict, members: int, sampled: bool, lang: str = "zh") -> str:
    """Per lever: its effect on core revenue in the judged year (90% paired interval), its spend and revenue per yuan
    (money in ``lang``'s unit)."""
    year = judged_year(spec)
    rows = headline(table, year)
    lines = [f"{spec.name} attribution (N = {members} paired members, Shapley values "
             f"{'from sampled lever orders' if sampled else 'exact over every subset'}), core revenue {year}:"]
    notes = set()
    for label, row in rows.iterrows():
        band = "" if math.isnan(row["low"]) else f" (90% {money(row['low'], lang, digits=2)} to {money(row['high'], lang, digits=2)})"
        text = f"  {label:<32} {money(row['value'], lang, digits=2):>16}{band}"
        if label in costs:
            cost, why = costs[label]
            notes.add(why)
            per_yuan = f"{row['value'] / cost:,.2f}" if cost > 0 else "n/a"
            text += f"; spend to {year} {money(cost, lang, digits=2)}, revenue per yuan {per_yuan}"
        lines.append(text)
    shares = rows["value"].drop("all").sum()
    lines.append(f"  levers add up to {money(shares, lang, digits=2)} of the 'all' {money(rows.loc['all', 'value'], lang, digits=2)}")
    lines.append(f"  revenue per yuan: a lever's effect on {year} core revenue divided by its public spend to {year}")
    if "no spend rows reported" in notes:
        lines.append(note("where spend is 0 the run reported no spend rows for that lever (level=lever, metric=spend_cny)"))
    lines += [note(text) for text in no_evidence((lever_label(spec, i), lever) for i, lever in enumerate(spec.levers))]
    lines += scale_note(spec.params.get("scale", 1), "effects are")
    if TARGETS_2027 and year < 2027:
        lines.append(note(f"the scenario ends in {year}, before 2027; effects are for {year}"))
    return "\n".join(lines)
