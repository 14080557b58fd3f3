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

from ..outputs.folder import atomic_folder
from ..outputs.manifest import manifest, result_record, write_manifest
from ..outputs.summary import note, yi
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
    from .members import _stack

    return tuple(replace(simulate(spec, seed, stack=_stack(spec), firm_years=firm_years), layers=None) for spec in (spec_a, spec_b))


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
            pairs = client.gather(futures)
    else:
        pairs = [run_pair(a, b, seed, firm_years) for (a, b), seed in zip(specs, seeds)]
    stacks = {spec.name: layers.load(**spec.layer_arguments()) for spec in (spec_a, spec_b)}
    a = [replace(pa, layers=stacks[spec_a.name]) for pa, _ in pairs]
    b = [replace(pb, layers=stacks[spec_b.name]) for _, pb in pairs]
    return Comparison(a, b, comparison_table(a, b))


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


def summary(result: Comparison) -> str:
    """The terminal account: headline differences B − A with paired 90 % intervals, and revenue per yuan of extra spend."""
    a, b, year = result.a[0].scenario.name, result.b[0].scenario.name, result.final_year
    n = len(result.a)
    table = result.table
    rows = table[(table["level"] == "city") & (table["year"] == year)].set_index("metric")
    lines = [f"{b} − {a}, {year}, {n} paired seed{'s' if n > 1 else ''} (paired 90% t interval):"]
    for metric, label in HEADLINES.items():
        row = rows.loc[metric]
        unit = 1e8 if metric.endswith("_cny") else 1.0
        interval = "(single seed: no interval)" if n < 2 else f"[{row['ci90_low'] / unit:+,.1f}, {row['ci90_high'] / unit:+,.1f}]"
        lines.append(f"  {label:<22} {row['difference'] / unit:+12,.1f}  {interval}")
    extra = spend_to(result.b, year) - spend_to(result.a, year)
    lines.append(f"  extra spend to {year}: {yi(extra.mean(), sign=True)} 亿元 (B's levers minus A's, both at the run's scale)")
    revenue = rows.loc["revenue_cny"]
    if abs(extra.mean()) > 0:
        ratio = f"{revenue['difference'] / extra.mean():+.2f}"
        if n > 1:
            low, high = sorted((revenue["ci90_low"] / extra.mean(), revenue["ci90_high"] / extra.mean()))
            ratio += f" [{low:+.2f}, {high:+.2f}]"
        lines.append(f"  {year} core revenue difference per yuan of extra spend: {ratio}")
    else:
        lines.append("  no extra spend: revenue per yuan is undefined")
    lines += [note(text) for text in no_evidence(changed_levers(result.a[0].scenario, result.b[0].scenario))]
    return "\n".join(lines)


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
