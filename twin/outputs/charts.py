"""Fan charts of an ensemble's headline metrics (matplotlib, no display needed), labelled in Chinese and English."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.targets import TARGETS_2027
from ..policy.scenario import Scenario
from .folder import atomic_file

FAN_METRICS = ("revenue_cny", "total_scale_cny", "firms", "talent", "leaders_100bn", "compute_pflops")
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
LINE_STYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
"""Sweep points differ in colour, line style and marker, so medians that coincide still show each other."""

LABELS = {
    "revenue_cny": ("核心营收", "Core revenue", "亿元"),
    "total_scale_cny": ("视觉智能总规模", "Total scale", "亿元"),
    "firms": ("企业数", "Firms", "家 firms"),
    "talent": ("人才", "Talent", "人 people"),
    "leaders_100bn": ("千亿级企业", "Firms ≥ CNY 100 bn", "家 firms"),
    "compute_pflops": ("算力", "Compute", "PFLOPS"),
}
"""Each metric in words: Chinese, English, unit."""

COUNTS = frozenset({"firms", "talent", "leaders_100bn"})
"""Metrics that are whole numbers: their axis gets integer ticks only."""

FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "DejaVu Sans")
"""Fonts tried in order, glyph by glyph: a CJK one for 汉字, DejaVu for the rest."""


def write_fan_charts(table: pd.DataFrame, folder: Path, spec: Scenario, seed: int, members: int, points: list[dict]) -> list[str]:
    """fan_<metric>.png: per point the median, the 5-95% band and the mean over the years."""
    names = []
    city = table[table["level"] == "city"]
    for metric in FAN_METRICS:
        rows = city[city["metric"] == metric]
        if rows.empty:
            continue
        name = f"fan_{metric}.png"
        save_png(_fan(rows, metric, spec, seed, members, points), folder / name)
        names.append(name)
    return names


def save_png(fig: Any, path: Path, **options: Any) -> None:
    """Save a matplotlib figure as a PNG atomically, with no "Software" stamp so the bytes depend only on the chart."""
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None}, **options)


def _installed_fonts() -> list[str]:
    """The FONTS matplotlib has, so it neither warns about the others nor draws 汉字 as boxes where one exists."""
    from matplotlib import font_manager

    present = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in FONTS if f in present] or ["DejaVu Sans"]


def _fan(rows: pd.DataFrame, metric: str, spec: Scenario, seed: int, members: int, points: list[dict]):
    """One metric's figure: a band, a median and a mean per sweep point, and the 2027 target.

    Its texts take their fonts when made, so the figure keeps the CJK font when saved later."""
    from matplotlib import rc_context

    with rc_context({"font.family": _installed_fonts(), "axes.unicode_minus": False}):
        return _draw_fan(rows, metric, spec, seed, members, points)


def _draw_fan(rows: pd.DataFrame, metric: str, spec: Scenario, seed: int, members: int, points: list[dict]):
    """The figure itself (see :func:`_fan`)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    zh, en, unit = LABELS[metric]
    scale = 1e8 if metric.endswith("_cny") else 1.0
    fig = Figure(figsize=(7.5, 4.5), dpi=120)
    ax = fig.subplots()
    for p, point in enumerate(points):
        mask = np.ones(len(rows), dtype=bool)
        for key, value in point.items():
            mask &= (rows[key] == value).to_numpy()
        sel = rows[mask].sort_values("year")
        colour = COLOURS[p % len(COLOURS)]
        x = sel["year"].to_numpy()
        ax.fill_between(x, sel["p5"] / scale, sel["p95"] / scale, color=colour, alpha=0.15, linewidth=0,
                        label="5–95% 成员区间 of members" if p == 0 else None)
        ax.plot(x, sel["p50"] / scale, color=colour, linewidth=2, linestyle=LINE_STYLES[p % len(LINE_STYLES)],
                marker=MARKERS[p % len(MARKERS)], markersize=5, label=_point_label(point))
        ax.plot(x, sel["mean"] / scale, color=colour, linewidth=1, linestyle=":", label="均值 mean" if not point else None)
    _target(ax, rows, metric, scale)
    ax.set_xlabel("年份 Year")
    ax.set_ylabel(f"{zh} {en} ({unit})")
    title_zh, title_en = (literal(t) for t in (spec.title.zh or spec.title.en or spec.name, spec.title.en or spec.title.zh or spec.name))
    ax.set_title(f"{title_zh} · {title_en}\n{zh} {en}: {members} 个成员 members, 随机种子 seed {seed}", fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if metric in COUNTS:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def literal(text: str) -> str:
    """``text`` drawn as written: a scenario title such as "$5 bn fund" must not be parsed as mathtext
    (an unbalanced ``$`` would fail after every member ran), so each ``$`` is escaped for matplotlib."""
    return text.replace("$", r"\$")


def _point_label(point: dict) -> str:
    """The median's legend entry: plain, or the sweep point's parameter values."""
    if not point:
        return "中位数 median"
    return "中位数 median: " + ", ".join(f"{k} = {v:g}" if isinstance(v, (int, float)) else f"{k} = {v}" for k, v in point.items())


def _target(ax, rows: pd.DataFrame, metric: str, scale: float) -> None:
    """The 2027 target as a line, or a note when it is far above the data (a scaled-down run)."""
    if metric not in TARGETS_2027:
        return
    target = TARGETS_2027[metric][0] / scale
    if target <= 5 * max(float(rows["p95"].max()) / scale, 1e-12):
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label="2027 目标 target")
    else:
        ax.text(0.01, 0.97, f"2027 目标 target {target:,.0f}: 超出坐标范围 off the scale", transform=ax.transAxes, va="top", fontsize=8)
