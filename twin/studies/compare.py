"""Paired comparisons: two scenarios run on the same seeds, their differences with paired 90 % intervals.

Running B and A on the same seed cancels much of the noise both share
(the synthesized base year, the draws that do not depend on policy), so the
seed-by-seed difference B − A has a far narrower spread than two
independent ensembles would. ``compare`` runs the pairs (serially for one
seed, on Dask with ``--ensemble N``) and writes into one folder:

- ``<a>/`` and ``<b>/``: each scenario's own outputs (for one seed the full
  ``write_run`` set; with N seeds its metrics per seed in ``metrics.csv``);
- ``comparison.csv``: per metric row, both means, the mean difference B − A,
  its paired 90 % t interval and n;
- ``map.html``: B − A revenue density, shaded only where the pairs agree on
  the sign (see :func:`twin.outputs.maps.payload._difference_layer`);
- ``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

import layers

from ..outputs import progress
from ..outputs.folder import atomic_folder
from ..outputs.progress import Members
from ..outputs.manifest import manifest, result_record, write_manifest
from ..outputs.summary import money, note
from ..outputs.tables import comparison_table, write_csv
from ..outputs.writer import write_comparison, write_run
from ..policy.evidence import no_evidence
from ..policy.levers import ScenarioLever
from ..policy.scenario import Scenario
from ..simulation.run import RunResult, simulate
from .seeds import MemberSpec, member_seeds

HEADLINES = {
    "revenue_cny": "core revenue (亿元)",
    "total_scale_cny": "total scale (亿元)",
    "firms": "firms",
    "leaders_100bn": "千亿 firms",
}
"""The headline differences the summary reports, with their labels."""


@dataclass
class Comparison:
    """The pairs of one comparison and their paired table."""

    a: list[RunResult]
    b: list[RunResult]
    table: pd.DataFrame  # comparison_table(a, b): B − A per metric row with a paired 90 % interval

    @property
    def final_year(self) -> int:
        """The last year both scenarios simulate."""
        return int(min(self.a[0].scenario.years.end, self.b[0].scenario.years.end))


def pair_seeds(seed: int, members: int | None) -> list[int]:
    """The seeds both scenarios run on: ``seed`` alone, or the ensemble's member seeds for ``members``."""
    return [seed] if members is None else member_seeds(seed, members)


def run_pair(spec_a: Scenario, spec_b: Scenario, seed: int, firm_years=None) -> tuple[RunResult, RunResult]:
    """Both member run specs on one seed, in this process; the layer stacks are dropped so the pair is cheap to ship back."""
    return tuple(replace(_simulate(spec, seed, firm_years), layers=None) for spec in (spec_a, spec_b))


def _simulate(spec: Scenario, seed: int, firm_years) -> RunResult:
    """One side of a pair, with a bar over its months when the job reports progress (in this process, not on Dask)."""
    from .members import _stack

    with progress.months(f"{spec.name} (seed {seed})", spec.years.start, spec.years.end) as tick:
        return simulate(spec, seed, stack=_stack(spec), firm_years=firm_years, progress=tick)


def run_pairs(spec_a: Scenario, spec_b: Scenario, seeds: list[int], *, workers: int = 2, scheduler: str | None = None,
              dask: bool = False, firm_years=None, member: MemberSpec = MemberSpec(posterior=False, responses=False)) -> Comparison:
    """Run every seed's pair (on Dask when ``dask``), reattach the layers and tabulate B − A.

    Both sides of a pair get the member's same draws (``member.run_spec`` by the pair's seed), so they stay paired.
    """
    specs = [(member.run_spec(spec_a, seed), member.run_spec(spec_b, seed)) for seed in seeds]
    if dask:
        from .cluster import dask_client

        with dask_client(workers, scheduler) as client:
            futures = client.map(run_pair, *zip(*specs), seeds, firm_years=firm_years, pure=False)
            _follow(client, futures, f"{spec_b.name} vs {spec_a.name}")
            pairs = client.gather(futures)
    else:
        pairs = [run_pair(a, b, seed, firm_years) for (a, b), seed in zip(specs, seeds)]
    stacks = {spec.name: layers.load(**spec.layer_arguments()) for spec in (spec_a, spec_b)}
    a = [replace(pa, layers=stacks[spec_a.name]) for pa, _ in pairs]
    b = [replace(pb, layers=stacks[spec_b.name]) for _, pb in pairs]
    return Comparison(a, b, comparison_table(a, b))


def _follow(client, futures: list, name: str) -> None:
    """Wait for the pairs with the job's bar of members (a pair is a member here)."""
    from distributed import as_completed

    bar = Members(name, len(futures), 0, quiet=not progress.active())
    bar.start()
    try:
        for done, _ in enumerate(as_completed(futures, loop=client.loop), 1):
            bar.update(done, len(futures) - done, len(futures))
    finally:
        bar.close()


def compare(spec_a: Scenario, spec_b: Scenario, out: Path, *, seed: int, members: int | None = None, workers: int = 2,
            scheduler: str | None = None, firm_years=None, png: bool = False, lang: str = "zh",
            member: MemberSpec = MemberSpec(posterior=False, responses=False)) -> Comparison:
    """Run the pairs (each drawing by ``member``) and write the comparison folder ``out`` atomically, every map
    opening in ``lang``; return the comparison."""
    result = run_pairs(spec_a, spec_b, pair_seeds(seed, members), workers=workers, scheduler=scheduler,
                       dask=members is not None, firm_years=firm_years, member=member)
    names = _folder_names(spec_a, spec_b)
    with atomic_folder(out) as folder:
        for runs, name in zip((result.a, result.b), names):
            (folder / name).mkdir()
            if members is None:
                write_run(runs[0], folder / name, png=png, lang=lang)
            else:
                write_csv(pd.concat([r.metrics for r in runs], ignore_index=True), folder / name / "metrics.csv")
        write_comparison(result.a, result.b, result.table, folder, png=png, lang=lang)
        write_manifest(folder, manifest("compare", [result_record(result.a[0]), result_record(result.b[0])],
                                        seeds=pair_seeds(seed, members), members=members,
                                        uncertainty=member.uncertainty(spec_a), draws=member.as_dict()))
    return result


def _folder_names(spec_a: Scenario, spec_b: Scenario) -> tuple[str, str]:
    """Subfolder names: the scenario names, told apart when they are the same."""
    return (spec_a.name, spec_b.name) if spec_a.name != spec_b.name else (f"{spec_a.name}_a", f"{spec_b.name}_b")


def spend_to(runs: list[RunResult], year: int) -> np.ndarray:
    """Per run: the CNY all levers spent up to and including ``year``."""
    return np.array([_spend_rows(r.metrics, year)["value"].sum() for r in runs])


def _spend_rows(metrics: pd.DataFrame, year: int) -> pd.DataFrame:
    """The spend_cny rows up to ``year``."""
    return metrics[(metrics["level"] == "lever") & (metrics["metric"] == "spend_cny") & (metrics["year"] <= year)]


def summary(result: Comparison, lang: str = "zh") -> str:
    """The terminal account, answer first: the headline differences B − A with paired 90 % intervals, what the
    extra spend bought per yuan (said in words), and where the core revenue difference fell: the places that
    gained most and those that lost most, from the same rows comparison.csv holds."""
    a, b, year = result.a[0].scenario.name, result.b[0].scenario.name, result.final_year
    n = len(result.a)
    table = result.table
    rows = table[(table["level"] == "city") & (table["year"] == year)].set_index("metric")
    unit, money_unit = (1e9, "CNY bn") if lang == "en" else (1e8, "亿元")
    lines = [f"{b} − {a}, {year}, {n} paired seed{'s' if n > 1 else ''} (paired 90% t interval):"]
    for metric, label in HEADLINES.items():
        row = rows.loc[metric]
        scale = unit if metric.endswith("_cny") else 1.0
        digits = 2 if lang == "en" and metric.endswith("_cny") else 1
        interval = ("(single seed: no interval)" if n < 2 else
                    f"[{row['ci90_low'] / scale:+,.{digits}f}, {row['ci90_high'] / scale:+,.{digits}f}]")
        lines.append(f"  {HEADLINES_EN[metric] if lang == 'en' else label:<28} {row['difference'] / scale:+12,.{digits}f}  {interval}")
    extra = spend_to(result.b, year) - spend_to(result.a, year)
    lines.append(f"  extra public spend to {year}: {money(extra.mean(), lang, digits=2, sign=True)} (B's levers minus A's, both at the run's scale)")
    revenue = rows.loc["revenue_cny"]
    if abs(extra.mean()) > 0:
        ratio = f"{revenue['difference'] / extra.mean():+.2f}"
        if n > 1:
            low, high = sorted((revenue["ci90_low"] / extra.mean(), revenue["ci90_high"] / extra.mean()))
            ratio += f" [{low:+.2f}, {high:+.2f}]"
        lines.append(f"  revenue per yuan: {ratio} (the {year} core revenue difference divided by the extra public spend "
                     f"to {year}: yuan of revenue in {year} per yuan spent over the years)")
    else:
        lines.append("  no extra spend: revenue per yuan is undefined")
    lines += [f"  {line}" for line in where(table, year, unit, money_unit, place_names(result.a[0], lang))]
    lines += [note(text) for text in no_evidence(changed_levers(result.a[0].scenario, result.b[0].scenario))]
    return "\n".join(lines)


HEADLINES_EN = {"revenue_cny": "core revenue (CNY bn)", "total_scale_cny": "total scale (CNY bn)", "firms": "firms",
                "leaders_100bn": "firms over CNY 100 bn (千亿)"}
"""The headline labels in English."""

PLACES = 3
"""How many places the summary names on each side (gains and losses)."""


def place_names(run: RunResult, lang: str) -> dict[str, str]:
    """The zones' and districts' names in ``lang`` by the keys metrics.csv uses (zone id, district name_zh), from the
    run's layers; empty when it carries none."""
    stack = getattr(run, "layers", None)
    if stack is None:
        return {}
    return {**dict(zip(stack.zones["zone"], stack.zones[f"name_{lang}"])),
            **dict(zip(stack.districts["name_zh"], stack.districts[f"name_{lang}"]))}


def where(table: pd.DataFrame, year: int, unit: float, money_unit: str, names: dict[str, str]) -> list[str]:
    """Per level (zones, then districts): where the core revenue difference in ``year`` gained most and lost most,
    each place by its name in ``names`` where it has one."""
    lines = []
    for level in ("zone", "district"):
        rows = table[(table["level"] == level) & (table["metric"] == "revenue_cny") & (table["year"] == year)]
        diff = rows.set_index(level)["difference"].sort_values().rename(lambda key: names.get(key, key))
        if diff.empty:
            continue
        gains, losses = diff[diff > 0][::-1][:PLACES], diff[diff < 0][:PLACES]
        lines.append(f"core revenue by {level} ({money_unit}): gained most {_places(gains, unit)}; "
                     f"lost most {_places(losses, unit)}")
    return lines


def _places(differences: pd.Series, unit: float) -> str:
    """``name +x.xx, ...`` in ``unit``, or ``none``."""
    return ", ".join(f"{name} {value / unit:+,.2f}" for name, value in differences.items()) or "none"


def changed_levers(spec_a: Scenario, spec_b: Scenario) -> list[tuple[str, ScenarioLever]]:
    """Per lever kind that one scenario has and the other lacks or sets otherwise: (kind, one such lever).

    The difference B − A is these levers' effect, so these are the ones whose evidence the summary reports."""
    dumps = [[lever.model_dump() for lever in spec.levers] for spec in (spec_a, spec_b)]
    changed: dict[str, ScenarioLever] = {}
    for side, spec in enumerate((spec_a, spec_b)):
        for lever, dump in zip(spec.levers, dumps[side]):
            if dump not in dumps[1 - side]:
                changed.setdefault(lever.kind, lever)
    return sorted(changed.items())
