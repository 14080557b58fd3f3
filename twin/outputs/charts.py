"""Fan charts of an ensemble's headline metrics (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.targets import TARGETS_2027
from ..policy.scenario import Scenario

FAN_METRICS = ("revenue_cny", "total_scale_cny", "firms", "talent", "leaders_100bn", "compute_pflops")
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


def write_fan_charts(table: pd.DataFrame, folder: Path, spec: Scenario, seed: int, members: int, points: list[dict]) -> list[str]:
    """fan_<metric>.png: per point the median, the 5-95% band and the mean over the years."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    city = table[table["level"] == "city"]
    names = []
    for metric in FAN_METRICS:
        rows = city[city["metric"] == metric]
        if rows.empty:
            continue
        money = metric.endswith("_cny")
        scale = 1e8 if money else 1.0
        fig = Figure(figsize=(7.5, 4.5), dpi=120)
        ax = fig.subplots()
        for p, point in enumerate(points):
            mask = np.ones(len(rows), dtype=bool)
            for name, value in point.items():
                mask &= (rows[name] == value).to_numpy()
            sel = rows[mask].sort_values("year")
            colour = COLOURS[p % len(COLOURS)]
            label = ", ".join(f"{k}={v!r}" for k, v in point.items()) if point else "median"
            x = sel["year"].to_numpy()
            ax.fill_between(x, sel["p5"] / scale, sel["p95"] / scale, color=colour, alpha=0.2, linewidth=0,
                            label="5-95% of members" if not point else None)
            ax.plot(x, sel["p50"] / scale, color=colour, linewidth=2, label=label)
            ax.plot(x, sel["mean"] / scale, color=colour, linewidth=1, linestyle=":", label="mean" if not point else None)
        if metric in TARGETS_2027:
            target = TARGETS_2027[metric][0] / scale
            if target <= 5 * max(float(rows["p95"].max()) / scale, 1e-12):
                ax.axhline(target, color="black", linestyle="--", linewidth=1, label="2027 target")
            else:  # far above the data (a scaled-down run): say so rather than flatten the fan
                ax.text(0.01, 0.97, f"2027 target {target:,.0f}: off the scale", transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlabel("year")
        ax.set_ylabel(f"{metric} ({'100 M CNY' if money else 'PFLOPS' if metric == 'compute_pflops' else 'count'})")
        ax.set_title(f"{spec.name}: {metric}, N = {members} members, seed {seed}", fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        name = f"fan_{metric}.png"
        fig.savefig(folder / name, format="png", metadata={"Software": None})
        names.append(name)
    return names
