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


def hindcast_params(calibration: Path = SHIPPED_CALIBRATION) -> dict[str, float]:
    """The hindcast's parameters: the calibration file's ≤2020 fit, and the priors of what that fit leaves out."""
    record = read_calibration(calibration)
    if "hindcast" not in record:
        raise InputError(calibration, "hindcast", "no hindcast fit: run `python -m twin.studies.calibration --hindcast --out FILE`")
    return {**priors(HINDCAST), **record["hindcast"]["fitted"]}


def hindcast(seed: int, scale: float, calibration: Path = SHIPPED_CALIBRATION) -> dict[tuple[str, int], float]:
    """One hindcast run: anchors' revenue each year and the final 规上 count (at full scale)."""
    from ..simulation.model import VisionValleyModel

    spec = scenarios.load(scenarios.SCENARIOS / "no_policy.yaml")
    spec = spec.model_copy(update={"years": scenarios.Years(start=BASE_YEAR, end=END_YEAR)})
    model = VisionValleyModel(spec, seed=seed, scale=scale, anchors=1, guishang_firms=GUISHANG_2020, **hindcast_params(calibration))
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


def validate(seeds: list[int], scale: float, calibration: Path = SHIPPED_CALIBRATION) -> pd.DataFrame:
    """The validation table: published, model seed mean and sd, relative error, bound and whether it holds."""
    table = published()
    runs = [hindcast(seed, scale, calibration) for seed in seeds]
    values = np.array([[run.get((f, y), math.nan) for f, y in zip(table["figure"], table["year"])] for run in runs])
    table["model"] = values.mean(axis=0)
    table["model_sd"] = values.std(axis=0, ddof=1) if len(runs) > 1 else 0.0
    table["rel_error"] = table["model"] / table["published"] - 1.0
    noisy = (table["kind"] == "anchor") & (table["published"] < SMALL_CNY)
    table["bound"] = table["kind"].map(BOUNDS).where(~noisy, np.maximum(BOUNDS["anchor"], NOISE_SDS * table["model_sd"] / table["published"]))
    table["within"] = table["rel_error"].abs() <= table["bound"]
    table.attrs["params"] = hindcast_params(calibration)
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
    write_csv(table.round({"model": 0, "model_sd": 0, "rel_error": 4}), args.out)
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
