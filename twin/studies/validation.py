"""Out-of-sample validation: a hindcast from an end-2020 base year to 2023, against what was published.

The base year is synthesized as 2020 ended: anchors at their 2020 revenue
(gis_data/anchor_revenue_series.csv; back-cast where no 2020 figure is
published, see twin.engine.baseyear) and the 规上 count back-cast from
2023 (``GUISHANG_2020``, an ASSUMPTION: no 2020 count is published). The run
uses no policy lever (the 视谷 policies began in 2023) and the hindcast's own
calibration, fitted to figures up to 2020 only (``calibration.HINDCAST``,
key ``hindcast`` of twin/engine/calibration.json), never the main fit, which
saw 2021–2023. It is compared with the published 2021–2023 anchor revenues
and the 2023 规上 count, all of them out of sample, and its synthetic
(non-anchor) firms with what is published on firm demography: entry, exit,
survival, the growth of the aggregates they belong to and of the 规上 count
(twin/studies/demography.py). Every bound is fixed from published figures;
none widens with the model's own seed spread.

The 规上 level check alone cannot reject a model without growth: its 2020
input is back-cast from 844 by assumption (634), and 634 lies within the
level's band around 844. So the 规上 count's growth is checked against the
model's OWN base-year count, with a band (demography.BANDS) that excludes
zero.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from layers import GIS_DATA, InputError

from ..engine.params import SHIPPED_CALIBRATION, read_calibration
from ..outputs.tables import write_csv
from ..policy import scenario as scenarios
from . import demography
from .calibration import GUISHANG_2023, HINDCAST, guishang_in, priors

BASE_YEAR, END_YEAR = 2020, 2023
GUISHANG_2020 = guishang_in(BASE_YEAR)
"""ASSUMPTION: the 2020 规上 count, back-cast from 844 (2023) at 10%/yr, the pace of the 2027 core target."""
FIRMS = ("hikvision_hq", "arcsoft_hq")
"""Anchor agents with published revenue in 2020 and each of 2021–2023 (萤石 has the series too, but it is
consolidated in 海康威视 and so not an agent of its own)."""
BOUNDS = {"anchor": 0.30, "guishang": 0.35}
"""Accepted factor, either way, between the seed mean and the published figure: an anchor's revenue in 2021–2023
within x/÷ 1.30 (or its own published volatility, ``LEVEL_SDS``, when larger), the 2023 规上 count within x/÷ 1.35.
Fixed: the model's own seed spread never widens them (3 model sd once let a 61% error pass for 虹软)."""
LEVEL_SDS = 2.0
"""An anchor whose published revenues scatter widely about their trend is held within LEVEL_SDS x that scatter (the
sd of its published log revenues about their linear trend), if wider than the 30%: how far its revenue wanders is a
published fact. 虹软's 5.3–6.8 亿 (2019–2023) scatter by about 0.13 (2 x 0.13 gives 29%), so it keeps 30%, as 海康威视 does."""
SMALL_FIRM_KINDS = ("entry_rate", "exit_rate", "survival", "synthetic_growth", "guishang_growth")
"""The small firms' checks (twin/studies/demography.py): they fail when only the synthetic firms are wrong."""


def _published_volatility(series: pd.DataFrame, firm: str) -> float:
    """The sd of a firm's published log revenues about their linear trend (every year the series has): how far it wanders."""
    one = series[series["id"] == firm]
    years, logs = one["year"].to_numpy(float), np.log(one["revenue_cny"].to_numpy(float))
    return float(np.std(logs - np.polyval(np.polyfit(years, logs, 1), years), ddof=2)) if len(one) > 2 else 0.0


def published() -> pd.DataFrame:
    """The checks: anchors' revenue 2021–2023, the 2023 规上 count, and the small firms' demography, each with fixed bounds."""
    series = pd.read_csv(GIS_DATA / "anchor_revenue_series.csv")
    rows = []
    for r in series.itertuples():
        if r.id in FIRMS and BASE_YEAR < r.year <= END_YEAR:
            k = max(BOUNDS["anchor"], math.expm1(LEVEL_SDS * _published_volatility(series, r.id)))
            rows.append({"figure": f"{r.id} revenue", "year": int(r.year), "published": float(r.revenue_cny), "kind": "anchor",
                         "lo": r.revenue_cny / (1 + k), "hi": r.revenue_cny * (1 + k)})
    k = BOUNDS["guishang"]
    rows.append({"figure": "规上 firms", "year": END_YEAR, "published": float(GUISHANG_2023), "kind": "guishang",
                 "lo": GUISHANG_2023 / (1 + k), "hi": GUISHANG_2023 * (1 + k)})
    survival = demography.survival_band(END_YEAR - BASE_YEAR - 1)
    central = {"entry_rate": demography.ENTRY_RATE, "exit_rate": demography.EXIT_RATE,
               "survival": demography.published_survival(END_YEAR - BASE_YEAR - 1)}
    for kind in SMALL_FIRM_KINDS:
        lo, hi = survival if kind == "survival" else demography.BANDS[kind]
        rows.append({"figure": _LABELS[kind], "year": END_YEAR, "published": central.get(kind, math.nan), "kind": kind, "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


_LABELS = {
    "entry_rate": "synthetic firms' entry rate/yr 2021-2023 (published: all enterprises)",
    "exit_rate": "synthetic firms' exit rate/yr 2021-2023 (published: all enterprises)",
    "survival": "2021 entrants alive at end-2023 (published: all enterprises)",
    "synthetic_growth": "synthetic firms' revenue log growth/yr 2020-2023",
    "guishang_growth": "规上 count log growth/yr 2020-2023 (model's own base)",
}


def hindcast_params(calibration: Path = SHIPPED_CALIBRATION) -> dict[str, float]:
    """The hindcast's parameters: the calibration file's ≤2020 fit, and the priors of what that fit leaves out."""
    record = read_calibration(calibration)
    if "hindcast" not in record:
        raise InputError(calibration, "hindcast", "no hindcast fit: run `python -m twin.studies.calibration --hindcast --out FILE`")
    return {**priors(HINDCAST), **record["hindcast"]["fitted"]}


def hindcast(seed: int, scale: float, calibration: Path = SHIPPED_CALIBRATION, levers: tuple = (),
             **overrides: float) -> dict[tuple[str, int], float]:
    """One hindcast run: anchors' revenue each year, the final 规上 count (at full scale) and the small firms' demography.

    ``levers`` and ``overrides`` perturb a run (tests: a lever that moves only the synthetic firms' growth)."""
    from ..simulation.model import VisionValleyModel

    spec = scenarios.load(scenarios.SCENARIOS / "no_policy.yaml")
    spec = spec.model_copy(update={"years": scenarios.Years(start=BASE_YEAR, end=END_YEAR)})
    model = VisionValleyModel(spec, seed=seed, scale=scale, anchors=1, guishang_firms=GUISHANG_2020, levers=list(levers),
                              **{**hindcast_params(calibration), **overrides})
    books = demography.Demography(model)
    out: dict[tuple[str, int], float] = {}
    while model.running:
        model.step()
        books.after_step(model)
        if model.steps % 12 == 0:
            year = model.calendar_year
            firms = model.state.firms
            for r in np.flatnonzero(firms.alive & (firms.anchor >= 0)):
                out[(f"{model.state.anchor_ids[firms.anchor[r]]} revenue", year)] = float(firms.revenue[r])
    out[("规上 firms", END_YEAR)] = model.figures["guishang_firms"] / scale  # synth counts anchors within the scaled 规上 count
    out |= {(_LABELS[k], END_YEAR): v for k, v in books.summary().items() if k in _LABELS}
    return out


def judge(table: pd.DataFrame) -> pd.DataFrame:
    """Mark each check ``within`` its fixed bounds [lo, hi] (a missing model value fails)."""
    table["within"] = (table["lo"] <= table["model"]) & (table["model"] <= table["hi"])
    return table


def validate(seeds: list[int], scale: float, calibration: Path = SHIPPED_CALIBRATION, levers: tuple = (),
             **overrides: float) -> pd.DataFrame:
    """The validation table: published, model seed mean and sd, relative error, fixed bounds [lo, hi] and whether it holds."""
    table = published()
    runs = [hindcast(seed, scale, calibration, levers, **overrides) for seed in seeds]
    values = np.array([[run.get((f, y), math.nan) for f, y in zip(table["figure"], table["year"])] for run in runs])
    table["model"] = values.mean(axis=0)
    table["model_sd"] = values.std(axis=0, ddof=1) if len(runs) > 1 else 0.0
    table["rel_error"] = table["model"] / table["published"] - 1.0
    judge(table)
    table.attrs["params"] = {**hindcast_params(calibration), **overrides}
    return table


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


DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "validation.csv"


def main(argv: list[str] | None = None) -> int:
    """``python -m twin.studies.validation``: print the model-vs-published table and write it as CSV;
    exit 1 when an error exceeds its bound."""
    parser = argparse.ArgumentParser(prog="python -m twin.studies.validation", description=main.__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="seeds (default 5)")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale (default 1, as the calibration; anchors on)")
    parser.add_argument("--calibration", type=Path, default=SHIPPED_CALIBRATION, help="calibration file whose hindcast fit runs (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV written (default docs/validation.csv)")
    args = parser.parse_args(argv)
    if not args.out.parent.is_dir() or args.out.is_dir():  # checked before the runs, not after them
        print(f"error: {args.out}: not a file in an existing folder", file=sys.stderr)
        return 2
    try:
        hindcast_params(args.calibration)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = validate(list(range(1, args.seeds + 1)), args.scale, args.calibration)
    write_csv(table.round({"model": 4, "model_sd": 4, "rel_error": 4, "lo": 4, "hi": 4}), args.out)
    print(f"hindcast 2020->2023, scale {args.scale:g}, seeds 1..{args.seeds}, parameters fitted to <=2020 {table.attrs['params']}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    growth = leader_growth(list(range(1, args.seeds + 1)), args.scale)
    mean = sum(growth) / len(growth)
    ok = all(LEADER_RANGE[0] <= g <= LEADER_RANGE[1] for g in growth)
    print(f"baseline 海康威视 2023->2024 growth, seeds 1..{args.seeds}: {', '.join(f'{g:+.1%}' for g in growth)}; "
          f"mean {mean:+.1%} ({'every seed within' if ok else 'a seed outside'} {LEADER_RANGE[0]:+.0%}..{LEADER_RANGE[1]:+.0%})")
    return 0 if table["within"].all() and ok else 1


if __name__ == "__main__":
    sys.exit(main())
