"""What the studio shows of a finished run: headline differences, 2027 targets, spend by lever, revenue per yuan.

Everything is read from the paired table of :func:`twin.outputs.tables.comparison_table`
(the one ``--compare`` writes) and from :func:`twin.studies.compare.spend_to`,
so the studio's figures are the command line's, not a second computation.
"""

from __future__ import annotations

import math

from ..engine.targets import TARGETS_2027, full_scale
from ..simulation.run import RunResult
from ..studies.compare import HEADLINES, Comparison, spend_to


def figures(result: Comparison, run: RunResult) -> dict:
    """The JSON the page and the API show: B (the scenario) against A (the reference), paired by seed."""
    year = result.final_year
    table = result.table
    rows = table[(table["level"] == "city") & (table["year"] == year)].set_index("metric")
    headline = [{"metric": metric, "label": label, "scenario": _num(rows.loc[metric, "mean_b"]),
                 "baseline": _num(rows.loc[metric, "mean_a"]), "difference": _num(rows.loc[metric, "difference"]),
                 "ci90_low": _num(rows.loc[metric, "ci90_low"]), "ci90_high": _num(rows.loc[metric, "ci90_high"])}
                for metric, label in HEADLINES.items()]
    scale = run.params.scale  # below 1 the gauges show full-city estimates against the absolute targets, as the summaries do
    scenario, baseline = (full_scale(rows[column], scale) for column in ("mean_b", "mean_a"))
    targets = [{"metric": metric, "label": label, "target": target, "value": _num(scenario[metric]),
                "baseline": _num(baseline[metric]), "scale": scale} for metric, (target, label) in TARGETS_2027.items()]
    extra = float((spend_to(result.b, year) - spend_to(result.a, year)).mean())
    return {"year": year, "members": len(result.a), "headline": headline, "targets": targets,
            "spend": _spend(run, year), "extra_spend_cny": extra, "revenue_per_yuan": _per_yuan(rows.loc["revenue_cny"], extra)}


def _spend(run: RunResult, year: int) -> list[dict]:
    """The scenario's spend per lever up to ``year`` (the seed's own run)."""
    metrics = run.metrics
    rows = metrics[(metrics["level"] == "lever") & (metrics["metric"] == "spend_cny") & (metrics["year"] <= year)]
    return [{"lever": str(lever), "spend_cny": float(value)} for lever, value in rows.groupby("lever", sort=True)["value"].sum().items()]


def _per_yuan(revenue, extra: float) -> dict | None:
    """Core revenue difference per yuan of extra spend, with its paired interval; None without extra spend."""
    if abs(extra) <= 0:
        return None
    low, high = sorted((revenue["ci90_low"] / extra, revenue["ci90_high"] / extra))
    return {"value": _num(revenue["difference"] / extra), "ci90_low": _num(low), "ci90_high": _num(high)}


def _num(value: float) -> float | None:
    """A JSON number, or null for NaN (no interval from a single pair)."""
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
