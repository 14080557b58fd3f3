"""Every shipped scenario against the baseline on the same seeds: 2027 differences with paired 90% intervals.

    python benchmarks/scenario_pairs.py [--scale 0.1] [--seeds 1-6] [--workers 2] [--year 2027]

For each scenario in ``scenarios/`` except the baseline, runs it and
``scenarios/baseline.yaml`` on the same seeds (common random numbers: paired
runs through :func:`twin.studies.compare.run_pairs`, on Dask) and prints
two markdown tables:

1. per scenario: N, seeds, scale, the mean paired difference (scenario −
   baseline) in core revenue, total scale and 千亿 firms in ``--year`` with a
   paired 90% t interval, both scenarios' total lever spend to that year, and
   Δrevenue per Δyuan of spend (with the revenue interval divided by the mean
   spend difference);
2. per scenario and lever: its spend to that year (mean over seeds, from the
   ``level=lever, metric=spend_cny`` rows).

Money is in 亿元 (10^8 CNY) at the run's scale: at ``--scale 0.1`` the city
has a tenth of its firms and talent, and lever budgets are scaled with it
where the lever says so, but the anchor firms keep their full size, so
revenue per yuan is only meaningful at ``--scale 1``. The runs use the scenarios' own parameters (no
posterior draws), as a one-seed ``--compare`` does (``--compare --ensemble N`` draws them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's twin, not an installed one
from twin.policy import scenario
from twin.policy.scenario import Scenario
from twin.studies.compare import HEADLINES, Comparison, _spend_rows, run_pairs, spend_to

YI = 1e8
"""Money is printed in 亿元."""

COLUMNS = ("revenue_cny", "total_scale_cny", "leaders_100bn")
"""The headline differences in the table (labels from compare.HEADLINES)."""


def seed_list(text: str) -> list[int]:
    """``1-6`` or ``1,3,5`` (or a mix) as a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def scaled(path: Path, scale: float, year: int) -> Scenario:
    """A shipped scenario at ``scale``, ending in ``year``."""
    spec = scenario.load(path)
    years = scenario.Years(start=spec.years.start, end=min(spec.years.end, year))
    return spec.model_copy(update={"params": {**spec.params, "scale": scale}, "years": years})


def shipped(baseline: Path = scenario.BASELINE) -> list[Path]:
    """Every scenario file in scenarios/ except the baseline, by name."""
    return sorted(p for p in baseline.parent.glob("*.yaml") if p.resolve() != baseline.resolve())


def interval(row: pd.Series, unit: float) -> str:
    """``mean [low, high]`` in ``unit``; no interval from one seed."""
    text = f"{row['difference'] / unit:+,.2f}"
    return text if np.isnan(row["ci90_low"]) else text + f" [{row['ci90_low'] / unit:+,.2f}, {row['ci90_high'] / unit:+,.2f}]"


def scenario_row(name: str, result: Comparison, seeds: list[int], scale: float, year: int) -> list[str]:
    """One line of the first table."""
    table = result.table
    rows = table[(table["level"] == "city") & (table["year"] == year)].set_index("metric")
    spend_b, spend_a = spend_to(result.b, year).mean(), spend_to(result.a, year).mean()
    extra = spend_b - spend_a
    revenue = rows.loc["revenue_cny"]
    if abs(extra) > 0:
        per_yuan = f"{revenue['difference'] / extra:+.2f}"
        if not np.isnan(revenue["ci90_low"]):
            low, high = sorted((revenue["ci90_low"] / extra, revenue["ci90_high"] / extra))
            per_yuan += f" [{low:+.2f}, {high:+.2f}]"
    else:
        per_yuan = "n/a (no extra spend)"
    cells = [interval(rows.loc[m], YI if m.endswith("_cny") else 1.0) for m in COLUMNS]
    return [name, str(len(seeds)), f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds)),
            f"{scale:g}", *cells, f"{spend_b / YI:,.2f}", f"{spend_a / YI:,.2f}", per_yuan]


def lever_costs(name: str, result: Comparison, year: int) -> list[list[str]]:
    """Lines of the second table: each of the scenario's levers and its mean spend to ``year``."""
    spend = pd.concat([_spend_rows(r.metrics, year).groupby("lever")["value"].sum() for r in result.b], axis=1).fillna(0.0)
    if spend.empty:
        return [[name, "(no levers)", "0.00"]]
    return [[name, str(lever), f"{value / YI:,.2f}"] for lever, value in spend.mean(axis=1).items()]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seeds", type=seed_list, default=seed_list("1-6"), help="e.g. 1-6 or 1,4,9")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--year", type=int, default=2027)
    args = parser.parse_args()
    started = time.perf_counter()
    base = scaled(scenario.BASELINE, args.scale, args.year)
    summary, costs = [], []
    for path in shipped():
        spec = scaled(path, args.scale, args.year)
        result = run_pairs(base, spec, args.seeds, workers=args.workers, dask=True, firm_years=())
        summary.append(scenario_row(spec.name, result, args.seeds, args.scale, result.final_year))
        costs += lever_costs(spec.name, result, result.final_year)
        print(f"{spec.name}: done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    labels = [f"Δ {HEADLINES[m]} (90% paired t)" for m in COLUMNS]
    print(markdown(["scenario", "N", "seeds", "scale", *labels, f"spend to {args.year} (亿元)", "baseline spend (亿元)",
                    "Δrevenue per Δyuan [90%]"], summary))
    print()
    print(markdown(["scenario", "lever", f"spend to {args.year} (亿元)"], costs))
    print(f"\n{len(summary)} scenarios x {len(args.seeds)} seeds x 2 runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
