"""Yearly metrics: headline figures and the tidy breakdown by zone, district and track.

The tidy rows are what metrics.csv holds: one value per ``year, level,
metric, zone, district, track, lever``. ``level`` says which breakdown a row
belongs to (``city``, ``zone``, ``district``, ``track``, ``lever``), so a
filter on one level never double counts; within a level the other keys are
empty. Values are in the unit the metric's name ends with (:data:`UNITS`),
rounded to the precision a planner reads (:data:`DECIMALS`): whole yuan,
whole counts, compute to 0.1 PFLOPS.
"""

from __future__ import annotations

import numpy as np

from .compiled import kernel
from .geography import Geography
from .infrastructure import compute_supply
from .params import TRACK_IDS, Params
from .state import State
from .targets import LEADER_100BN_CNY

COLUMNS = ("year", "level", "metric", "zone", "district", "track", "lever", "value")
KEYS = COLUMNS[:-1]
"""The columns that identify a row."""

UNITS = {
    "revenue_cny": "CNY",
    "total_scale_cny": "CNY",
    "firms": "firms",
    "guishang_firms": "firms",
    "leaders_100bn": "firms",
    "anchor_revenue_cny": "CNY",
    "anchor_leaders_100bn": "firms",
    "talent": "people",
    "employed": "people",
    "compute_pflops": "PFLOPS",
    "spend_cny": "CNY",
}
"""Each metric's unit; money is in CNY (1 亿元 = 1e8 CNY), counts in whole units."""

DECIMALS = {"compute_pflops": 1}
"""Decimals kept per metric in the tidy rows; every other metric is a whole number."""


def rounded(metric: str, value: float) -> float:
    """``value`` at the metric's precision, so tables show whole yuan and whole counts, not float noise."""
    return round(float(value), DECIMALS.get(metric, 0)) + 0.0  # + 0.0 turns -0.0 into 0.0


def headline(state: State, params: Params) -> dict[str, float]:
    """The figures the 2027 targets are stated in, plus counts."""
    firms = state.firms
    count, core, guishang, leaders, employed, anchor_core, anchor_leaders = _firm_totals(
        firms.alive, firms.anchor, firms.revenue, firms.employees, params.guishang_threshold_cny, LEADER_100BN_CNY)
    return {
        "revenue_cny": core,
        "total_scale_cny": core * (1.0 + params.related_multiplier),  # core x a user-set multiplier (targets.MULTIPLIER_TARGETS)
        "firms": float(count),
        "guishang_firms": float(guishang),
        "leaders_100bn": float(leaders),
        "anchor_revenue_cny": anchor_core,  # the anchors' part, simulated at real size at any scale (targets.full_scale)
        "anchor_leaders_100bn": float(anchor_leaders),
        "talent": float(state.talent.count),
        "employed": float(employed),
        "compute_pflops": compute_supply(state),
    }


@kernel
def _firm_totals(alive, anchor, revenue, employees, guishang, leader):  # noqa: ANN001, ANN201 (numba arrays)
    """Live firms, their revenue, those at or above the 规上 and 100 亿 thresholds, their workers, and the anchors'
    revenue and 100 亿 count (``anchor >= 0``): one pass, every month."""
    count, core, above, leaders, employed, anchor_core, anchor_leaders = 0, 0.0, 0, 0, 0, 0.0, 0
    for i in range(alive.shape[0]):
        if alive[i]:
            count += 1
            core += revenue[i]
            above += revenue[i] >= guishang
            leaders += revenue[i] >= leader
            employed += employees[i]
            if anchor[i] >= 0:
                anchor_core += revenue[i]
                anchor_leaders += revenue[i] >= leader
    return count, core, above, leaders, employed, anchor_core, anchor_leaders


def tidy_rows(year: int, state: State, geo: Geography, params: Params) -> list[tuple]:
    """All metric rows for one year: city totals, then revenue, firms and talent by zone, district and track."""
    rows = [(year, "city", name, "", "", "", "", rounded(name, value)) for name, value in headline(state, params).items()]
    firms = state.firms
    alive = firms.alive
    cell, revenue, track = firms.cell[alive], firms.revenue[alive], firms.track[alive]
    lived = np.flatnonzero(state.residents)  # talent by home cell: a pass over the cells, not the talent table
    people = state.residents[lived]
    for key, names, of_cell in (("zone", geo.zone_ids, geo.zone), ("district", geo.district_names, geo.district), ("track", TRACK_IDS, None)):
        firm_key = track if of_cell is None else of_cell[cell]
        by = {
            "revenue_cny": np.bincount(firm_key, revenue, minlength=len(names)),
            "firms": np.bincount(firm_key, minlength=len(names)),
        }
        if of_cell is not None:
            by["talent"] = np.bincount(of_cell[lived], people, minlength=len(names))
        for metric, values in by.items():
            for name, value in zip(names, values):
                rows.append((year, key, metric, *_keys(key, name), "", rounded(metric, value)))
    return rows


def _keys(key: str, name: str) -> tuple[str, str, str]:
    """(zone, district, track) with only ``key`` filled."""
    return tuple(name if k == key else "" for k in ("zone", "district", "track"))
