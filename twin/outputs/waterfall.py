"""Charts of the studies: the waterfall of an attribution and the Pareto front of goal seeking (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

from ..policy.scenario import Scenario
from .charts import save_png

UP, DOWN, ENDS = "#2ca02c", "#d62728", "#7f7f7f"


def write_waterfall(path: Path, spec: Scenario, year: int, base: float, effects: dict[str, float]) -> None:
    """attribution.png: core revenue with no levers, each lever's Shapley value stacked on it, then all levers."""
    from matplotlib.figure import Figure

    labels = ["no levers", *effects, "all levers"]
    fig = Figure(figsize=(max(6.0, 1.1 * len(labels)), 4.8), dpi=120)
    ax = fig.add_subplot()
    level = base
    ax.bar(0, base / 1e8, color=ENDS)
    for i, value in enumerate(effects.values(), start=1):
        ax.bar(i, value / 1e8, bottom=level / 1e8, color=UP if value >= 0 else DOWN)
        ax.text(i, (level + max(value, 0)) / 1e8, f"{value / 1e8:+,.2f}", ha="center", va="bottom", fontsize=8)
        level += value
    ax.bar(len(labels) - 1, level / 1e8, color=ENDS)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("core revenue, 100 M CNY")
    low = min(base, level) / 1e8
    ax.set_ylim(bottom=max(0.0, low - 0.15 * abs(level - base) / 1e8 - 1e-9))
    scale = spec.params.get("scale", 1)
    ax.set_title(f"{spec.name}: {year} core revenue by lever (Shapley values, paired seeds)"
                 + (f"\nparams.scale = {scale:g}" if scale != 1 else ""), fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def write_pareto(path: Path, spec: Scenario, table, probability: float) -> None:
    """pareto.png: every trial's public cost against its chance of all three 2027 targets, the front joined."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.5), dpi=120)
    ax = fig.add_subplot()
    ax.scatter(table["cost_cny"] / 1e8, table["p_all_targets"], color=ENDS, s=18, label="trial")
    front = table[table["pareto"]].sort_values("cost_cny")
    ax.step(front["cost_cny"] / 1e8, front["p_all_targets"], where="post", color=UP, marker="o", label="Pareto front")
    ax.axhline(probability, color=DOWN, linestyle="--", linewidth=1, label=f"required P = {probability:.0%}")
    ax.set_xlabel("public cost to 2027, 100 M CNY")
    ax.set_ylabel("P(all three 2027 targets)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{spec.name}: goal seeking, {len(table)} trials", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    save_png(fig, path)
