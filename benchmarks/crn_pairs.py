"""Common random numbers at work: paired vs unpaired seeds for one policy comparison.

    python benchmarks/crn_pairs.py [--scale 0.1] [--seeds 6] [--year 2027]

Runs ``scenarios/baseline.yaml`` and ``scenarios/vouchers_250m.yaml`` on seeds
1..N and prints, for the city's core revenue (``revenue_cny``, level city) in
``--year``: the mean and sd of the paired differences (same seed), the sd of
unpaired differences (baseline seed s against vouchers seed s + 100), and the
paired t statistic. With keyed streams the paired sd is far smaller, so an
effect shows with few seeds. Measured on the full-scale refit, with the engine
that hashes each worker once a month (25 November 2026; seeds 1-6, scale 0.1,
anchors on, 2027): paired mean +97.2 M CNY, paired sd 16.2 M, unpaired sd
15.5 bn (955 times the paired), t = 14.7.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's twin, not an installed one
import layers
from twin.policy import scenario
from twin.simulation.model import VisionValleyModel

ROOT = scenario.BASELINE.parent


def city_revenue(name: str, seed: int, year: int, stack: layers.LayerStack, **params) -> float:
    """Core revenue of the whole city in ``year`` (CNY), from the model's tidy metrics table."""
    spec = scenario.load(ROOT / f"{name}.yaml")
    spec = spec.model_copy(update={"years": scenario.Years(start=spec.years.start, end=year)})
    model = VisionValleyModel(spec, seed=seed, stack=stack, **params)
    model.run_model()
    table = model.datacollector.get_table_dataframe("metrics")
    row = table[(table.year == year) & (table.level == "city") & (table.metric == "revenue_cny")]
    return float(row.value.iloc[0])


def compare(seeds: range, year: int, stack: layers.LayerStack, offset: int = 100, **params) -> dict[str, float]:
    """Paired and unpaired vouchers-minus-baseline differences over ``seeds``."""
    base = np.array([city_revenue("baseline", s, year, stack, **params) for s in seeds])
    same = np.array([city_revenue("vouchers_250m", s, year, stack, **params) for s in seeds])
    other = np.array([city_revenue("vouchers_250m", s + offset, year, stack, **params) for s in seeds])
    paired, unpaired = same - base, other - base
    return {
        "seeds": len(seeds),
        "mean_paired_cny": float(paired.mean()),
        "sd_paired_cny": float(paired.std(ddof=1)),
        "mean_unpaired_cny": float(unpaired.mean()),
        "sd_unpaired_cny": float(unpaired.std(ddof=1)),
        "t_paired": float(paired.mean() / (paired.std(ddof=1) / np.sqrt(len(seeds)))),
        "baseline_mean_cny": float(base.mean()),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--year", type=int, default=2027)
    args = parser.parse_args()
    started = time.perf_counter()
    result = compare(range(1, args.seeds + 1), args.year, layers.load(), scale=args.scale)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
