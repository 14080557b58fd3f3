"""Yearly metrics: headline figures and the tidy breakdown by zone, district and track.

The tidy rows are what metrics.csv holds: one value per ``year, level,
metric, zone, district, track, lever``. ``level`` says which breakdown a row
belongs to (``city``, ``zone``, ``district``, ``track``, ``lever``), so a
filter on one level never double counts; within a level the other keys are
empty.
"""

from __future__ import annotations

import numpy as np

from .geography import Geography
from .infrastructure import compute_supply
from .params import TRACK_IDS, Params
from .state import State
from .targets import LEADER_100BN_CNY

COLUMNS = ("year", "level", "metric", "zone", "district", "track", "lever", "value")
KEYS = COLUMNS[:-1]
"""The columns that identify a row."""


def headline(state: State, params: Params) -> dict[str, float]:
    """The figures the 2027 targets are stated in, plus counts."""
    firms = state.firms
    revenue = firms.revenue[firms.alive]
    core = float(revenue.sum())
    return {
        "revenue_cny": core,
        "total_scale_cny": core * (1.0 + params.related_multiplier),  # core x a user-set multiplier (targets.MULTIPLIER_TARGETS)
        "firms": float(len(revenue)),
        "guishang_firms": float((revenue >= params.guishang_threshold_cny).sum()),
        "leaders_100bn": float((revenue >= LEADER_100BN_CNY).sum()),
        "talent": float(state.talent.count),
        "employed": float(firms.employees[firms.alive].sum()),
        "compute_pflops": compute_supply(state),
    }


def tidy_rows(year: int, state: State, geo: Geography, params: Params) -> list[tuple]:
    """All metric rows for one year: city totals, then revenue, firms and talent by zone, district and track."""
    rows = [(year, "city", name, "", "", "", "", value) for name, value in headline(state, params).items()]
    firms, talent = state.firms, state.talent
    alive = firms.alive
    cell, revenue, track = firms.cell[alive], firms.revenue[alive], firms.track[alive]
    homes = talent.home[talent.alive]
    for key, names, firm_key, talent_key in (
        ("zone", geo.zone_ids, geo.zone[cell], geo.zone[homes]),
        ("district", geo.district_names, geo.district[cell], geo.district[homes]),
        ("track", TRACK_IDS, track, None),
    ):
        by = {
            "revenue_cny": np.bincount(firm_key, revenue, minlength=len(names)),
            "firms": np.bincount(firm_key, minlength=len(names)),
        }
        if talent_key is not None:
            by["talent"] = np.bincount(talent_key, minlength=len(names))
        for metric, values in by.items():
            for name, value in zip(names, values):
                rows.append((year, key, metric, *_keys(key, name), "", float(value)))
    return rows


def _keys(key: str, name: str) -> tuple[str, str, str]:
    """(zone, district, track) with only ``key`` filled."""
    return tuple(name if k == key else "" for k in ("zone", "district", "track"))
