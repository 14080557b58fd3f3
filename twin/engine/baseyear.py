"""Anchor firms' revenue in a base year other than 2023, for hindcasts and calibration.

gis_data/anchor_firms.csv holds each anchor's 2023 revenue; the published
series (gis_data/anchor_revenue_series.csv, docs/sources.md) gives earlier
years for some of them. A firm with a figure for the base year takes it; one
without is back-cast from 2023 by the median ratio (base-year / 2023 revenue)
of the anchors that have both (ASSUMPTION: the unsourced anchors moved like
the sourced ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LISTED_YEAR = 2023
"""The year of the revenues in gis_data/anchor_firms.csv."""


def anchor_revenue_in_year(ids: np.ndarray, revenue: np.ndarray, year: int, series: pd.DataFrame) -> np.ndarray:
    """The anchors' revenue in ``year`` (the listed 2023 revenue when ``year`` is 2023 or later), from the
    published ``series`` (the layer stack's ``anchor_revenue_series``)."""
    if year >= LISTED_YEAR:
        return revenue
    series = series.assign(year=series["year"].astype(int), revenue_cny=series["revenue_cny"].astype(float))
    wide = series.pivot_table(index="id", columns="year", values="revenue_cny", aggfunc="first")
    known = wide[year].dropna() if year in wide else wide.iloc[:0, 0]
    both = known.index.intersection(wide[LISTED_YEAR].dropna().index) if LISTED_YEAR in wide else known.index[:0]
    ratio = float(np.median(known[both] / wide.loc[both, LISTED_YEAR])) if len(both) else 1.0
    out = np.asarray(revenue, dtype=float) * ratio
    for i, firm in enumerate(ids):
        if firm in known.index:
            out[i] = float(known[firm])
    return out
