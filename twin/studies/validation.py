"""Out-of-sample validation: a hindcast from an end-2020 base year to 2023, against what was published.

The base year is synthesized as 2020 ended: anchors at their 2020 revenue
(gis_data/anchor_revenue_series.csv; back-cast where no 2020 figure is
published, see twin.engine.baseyear) and the 规上 count back-cast from
2023 (``GUISHANG_2020``, an ASSUMPTION: no 2020 count is published). The run
uses no policy lever (the 视谷 policies began in 2023) and the hindcast's own
calibration, fitted to figures up to 2020 only (``calibration.HINDCAST``,
key ``hindcast`` of twin/engine/calibration.json), never the main fit, which
saw 2021–2023. It is compared with the published 2021–2023 anchor revenues
and the 2023 规上 count, all of them out of sample.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from layers import GIS_DATA

from ..engine.params import CALIBRATION
from ..policy import scenario as scenarios
from .calibration import GUISHANG_2023, HINDCAST, guishang_in, priors

BASE_YEAR, END_YEAR = 2020, 2023
GUISHANG_2020 = guishang_in(BASE_YEAR)
"""ASSUMPTION: the 2020 规上 count, back-cast from 844 (2023) at 10%/yr, the pace of the 2027 core target."""
FIRMS = ("hikvision_hq", "arcsoft_hq")
"""Anchor agents with published revenue in 2020 and each of 2021–2023 (萤石 has the series too, but it is
consolidated in 海康威视 and so not an agent of its own)."""
BOUNDS = {"anchor": 0.30, "guishang": 0.35}
"""Largest accepted |relative error| of the seed mean: an anchor's revenue in 2021–2023, the 2023 规上 count.
An anchor below ``SMALL_CNY`` gets at least three of the model's seed sd (the calibration's 3-sigma rule): its
one-year noise is 15-20%, so its three-year path is mostly luck, which a 30% bound would count as the model's error."""
SMALL_CNY = 1e9
NOISE_SDS = 3.0


def published() -> pd.DataFrame:
    """The published figures validated against: anchors' revenue 2021–2023 and the 2023 规上 count."""
    series = pd.read_csv(GIS_DATA / "anchor_revenue_series.csv")
    rows = [
        {"figure": f"{r.id} revenue", "year": int(r.year), "published": float(r.revenue_cny), "kind": "anchor", "id": r.id}
        for r in series.itertuples()
        if r.id in FIRMS and BASE_YEAR < r.year <= END_YEAR
    ]
    rows.append({"figure": "规上 firms", "year": END_YEAR, "published": float(GUISHANG_2023), "kind": "guishang", "id": ""})
    return pd.DataFrame(rows)


def hindcast_params() -> dict[str, float]:
    """The hindcast's parameters: its ≤2020 fit, and the priors of what that fit leaves out."""
    if "hindcast" not in CALIBRATION:
        raise RuntimeError("twin/engine/calibration.json has no 'hindcast' fit: run `python -m twin.calibrate --hindcast`")
    return {**priors(HINDCAST), **CALIBRATION["hindcast"]["fitted"]}


def hindcast(seed: int, scale: float) -> dict[tuple[str, int], float]:
    """One hindcast run: anchors' revenue each year and the final 规上 count (at full scale)."""
    from ..simulation.model import VisionValleyModel

    spec = scenarios.load(scenarios.SCENARIOS / "no_policy.yaml")
    spec = spec.model_copy(update={"years": scenarios.Years(start=BASE_YEAR, end=END_YEAR)})
    model = VisionValleyModel(spec, seed=seed, scale=scale, anchors=1, guishang_firms=GUISHANG_2020, **hindcast_params())
    out: dict[tuple[str, int], float] = {}
    while model.running:
        model.step()
        if model.steps % 12 == 0:
            year = model.calendar_year
            firms = model.state.firms
            for r in np.flatnonzero(firms.alive & (firms.anchor >= 0)):
                out[(f"{model.state.anchor_ids[firms.anchor[r]]} revenue", year)] = float(firms.revenue[r])
    out[("规上 firms", END_YEAR)] = model.figures["guishang_firms"] / scale  # synth counts anchors within the scaled 规上 count
    return out


def validate(seeds: list[int], scale: float) -> pd.DataFrame:
    """The validation table: published, model seed mean and sd, relative error, bound and whether it holds."""
    table = published()
    runs = [hindcast(seed, scale) for seed in seeds]
    values = np.array([[run.get((f, y), math.nan) for f, y in zip(table["figure"], table["year"])] for run in runs])
    table["model"] = values.mean(axis=0)
    table["model_sd"] = values.std(axis=0, ddof=1) if len(runs) > 1 else 0.0
    table["rel_error"] = table["model"] / table["published"] - 1.0
    noisy = (table["kind"] == "anchor") & (table["published"] < SMALL_CNY)
    table["bound"] = table["kind"].map(BOUNDS).where(~noisy, np.maximum(BOUNDS["anchor"], NOISE_SDS * table["model_sd"] / table["published"]))
    table["within"] = table["rel_error"].abs() <= table["bound"]
    table.attrs["params"] = hindcast_params()
    return table.drop(columns=["id"])


LEADER_RANGE = (-0.02, 0.10)
"""海康威视's published year-on-year growth in recent years lies about here (docs/sources.md#s-hik-2020 ff.)."""


def leader_growth(seeds: list[int], scale: float, firm: str = "hikvision_hq") -> list[float]:
    """The baseline's growth of one anchor in its first simulated year (2023→2024), one value per seed."""
    from ..simulation.model import VisionValleyModel

    spec = scenarios.load(scenarios.BASELINE).model_copy(update={"years": scenarios.Years(start=2023, end=2024)})
    out = []
    for seed in seeds:
        model = VisionValleyModel(spec, seed=seed, scale=scale, anchors=1)
        row = model.state.anchor_ids.index(firm)
        firms = model.state.firms
        start = float(firms.revenue[firms.anchor == row][0])
        model.run_model()
        firms = model.state.firms
        out.append(float(firms.revenue[firms.anchor == row][0]) / start - 1.0)
    return out
