"""Calibration: history matching of the growth parameters to the anchors' published revenue, with optuna.

Design (why): the anchors' 2022→2023 revenue growth (gis_data/anchor_revenue_series.csv,
docs/sources.md) spans firms from 2 亿 to 830 亿, so it pins down the
mean growth and how it falls with size, which is what made 海康威视 grow too
fast. Each candidate runs the twin from a 2022 base year (anchors at their
2022 revenue) through 2023, on the same seeds as every other candidate
(common random numbers), so candidates differ by their parameters, not their
luck. Its fit is the implausibility of each target,
``|model mean - published| / sqrt(model seed variance / seeds + discrepancy²)``
(history matching; Craig et al. 1997): a one-year growth of a small firm is
noisy, and the published value is one draw of it. optuna's TPE sampler
proposes candidates (a kept, seeded library with an ask/tell interface, so
candidates run as a batch on Dask); the point fit is the lowest sum of
squared implausibilities and the posterior sample is every candidate whose
largest implausibility is below ``CUTOFF`` (the usual 3-sigma rule).
No figure after 2023 is used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layers import GIS_DATA

from ..engine.params import CALIBRATION_FILE
from ..policy import scenario as scenarios

FITTED = {
    "growth_mu": (0.0, 0.25),
    "growth_size_drag": (0.0, 0.12),
    "agglomeration_weight": (0.0, 0.1),
}
"""The parameters fitted and their search ranges (within Params' allowed ranges)."""

TARGET_FIRMS = ("hikvision_hq", "dahua_hq", "arcsoft_hq", "scantech_hq")
"""Anchors with published revenue in both 2022 and 2023 (docs/sources.md)."""

BASE_YEAR, END_YEAR = 2022, 2023
DISCREPANCY = 0.03
"""ASSUMPTION: model discrepancy of a one-year log growth (3 points): what the twin cannot be expected to match."""
CUTOFF = 3.0
"""Largest implausibility of a posterior member (Pukelsheim's 3-sigma rule)."""


@dataclass(frozen=True)
class Design:
    """What a calibration runs: scale, seeds and the base and end years."""

    scale: float = 0.05
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    base_year: int = BASE_YEAR
    end_year: int = END_YEAR
    scenario: str = "no_policy"  # the 2023 policies had not started in 2022


def published_growth(base_year: int = BASE_YEAR, end_year: int = END_YEAR) -> pd.DataFrame:
    """Published log growth per year of the target anchors between two years, with the sources."""
    series = pd.read_csv(GIS_DATA / "anchor_revenue_series.csv")
    wide = series.pivot_table(index="id", columns="year", values="revenue_cny", aggfunc="first")
    rows = []
    for firm in TARGET_FIRMS:
        a, b = wide.loc[firm, base_year], wide.loc[firm, end_year]
        rows.append({"target": f"{firm} log growth {base_year}-{end_year}", "id": firm, "base_cny": float(a),
                     "published": math.log(b / a) / (end_year - base_year)})
    return pd.DataFrame(rows)


def run_candidate(params: dict[str, float], seed: int, design: Design) -> dict[str, float]:
    """One run (a Dask task): each anchor's log growth per year from the base year to the end year."""
    from ..simulation.model import VisionValleyModel
    from .members import _stack

    spec = _spec(design)
    model = VisionValleyModel(spec, seed=seed, stack=_stack(spec), scale=design.scale, anchors=1, **params)
    start = _anchor_revenue(model)
    model.run()
    end = _anchor_revenue(model)
    years = design.end_year - design.base_year
    return {firm: math.log(end[firm] / start[firm]) / years if firm in end else -10.0 for firm in TARGET_FIRMS}


def _spec(design: Design) -> scenarios.Scenario:
    """The scenario a candidate runs: the design's scenario over its years."""
    spec = scenarios.load(scenarios.SCENARIOS / f"{design.scenario}.yaml")
    return spec.model_copy(update={"years": scenarios.Years(start=design.base_year, end=design.end_year)})


def _anchor_revenue(model) -> dict[str, float]:
    """Live anchors' revenue by anchor id."""
    firms = model.state.firms
    rows = np.flatnonzero(firms.alive & (firms.anchor >= 0))
    return {model.state.anchor_ids[firms.anchor[r]]: float(firms.revenue[r]) for r in rows}


def score(runs: list[dict[str, float]], published: pd.DataFrame) -> pd.DataFrame:
    """Per target: model mean over seeds, error and implausibility."""
    table = published.copy()
    values = np.array([[run[firm] for firm in table["id"]] for run in runs])
    table["model"] = values.mean(axis=0)
    table["model_sd"] = values.std(axis=0, ddof=1) if len(runs) > 1 else 0.0
    table["error"] = table["model"] - table["published"]
    table["implausibility"] = table["error"].abs() / np.sqrt(table["model_sd"] ** 2 / len(runs) + DISCREPANCY**2)
    return table


def calibrate(trials: int, design: Design, client, progress=None, seed: int = 0) -> dict[str, Any]:
    """Run ``trials`` optuna candidates in batches on the Dask client; return the calibration record."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, trials // 3)))
    published = published_growth(design.base_year, design.end_year)
    batch = max(1, len(client.scheduler_info()["workers"]))
    records = []
    while len(records) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(records)))]
        points = [{name: t.suggest_float(name, lo, hi) for name, (lo, hi) in FITTED.items()} for t in asked]
        futures = [[client.submit(run_candidate, p, s, design, pure=False) for s in design.seeds] for p in points]
        for trial, point, runs in zip(asked, points, futures):
            table = score(client.gather(runs), published)
            study.tell(trial, float((table["implausibility"] ** 2).sum()))
            records.append((point, table))
            if progress:
                progress(1)
    return _record(records, design, published)


def _record(records: list, design: Design, published: pd.DataFrame) -> dict[str, Any]:
    """The calibration file's content: fitted values, posterior sample, data and per-target error."""
    losses = [float((t["implausibility"] ** 2).sum()) for _, t in records]
    best = int(np.argmin(losses))
    point, table = records[best]
    posterior = [p for p, t in records if t["implausibility"].max() < CUTOFF]
    return {
        "method": "history matching with optuna TPE proposals; see twin/studies/calibration.py",
        "fitted": {k: round(v, 5) for k, v in point.items()},
        "fitted_to": f"anchors' published log revenue growth {design.base_year}-{design.end_year} "
                     "(gis_data/anchor_revenue_series.csv; docs/sources.md)",
        "design": {"scale": design.scale, "seeds": list(design.seeds), "base_year": design.base_year,
                   "end_year": design.end_year, "scenario": design.scenario, "trials": len(records),
                   "discrepancy": DISCREPANCY, "cutoff": CUTOFF, "search": {k: list(v) for k, v in FITTED.items()}},
        "targets": table[["target", "published", "model", "model_sd", "error", "implausibility"]].round(5).to_dict("records"),
        "posterior": [{k: round(v, 5) for k, v in p.items()} for p in posterior] or [dict(records[best][0])],
        "posterior_note": f"{len(posterior)} of {len(records)} candidates have every implausibility below {CUTOFF}"
                          + ("" if posterior else "; none did, so the sample is the point fit alone"),
    }


def write_calibration(record: dict[str, Any], path: Path = CALIBRATION_FILE) -> None:
    """Write the calibration file (sorted keys, so reruns diff cleanly)."""
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def markdown(record: dict[str, Any]) -> str:
    """docs/calibration.md: what was fitted to what, the fit per target and the posterior sample."""
    d = record["design"]
    lines = [
        "# Calibration",
        "",
        "Generated by `python -m twin.calibrate` from `twin/engine/calibration.json`; do not edit by hand.",
        "",
        f"Method: {record['method']}. Fitted to {record['fitted_to']}.",
        (f"Design: base year {d['base_year']} (anchors at their {d['base_year']} revenue), run to {d['end_year']}, "
        f"scenario `{d['scenario']}`, scale {d['scale']:g} with anchors, seeds {d['seeds']} common to every candidate, "
        f"{d['trials']} candidates; model discrepancy {d['discrepancy']:g} (log growth), posterior cut-off "
        f"implausibility < {d['cutoff']:g}. No figure after 2023 is used."),
        "",
        "| parameter | fitted | search range |",
        "|---|---|---|",
        *(f"| `{k}` | {v:g} | {d['search'][k][0]:g} – {d['search'][k][1]:g} |" for k, v in record["fitted"].items()),
        "",
        "| target | published | model (mean of seeds) | seed sd | error | implausibility |",
        "|---|---|---|---|---|---|",
        *(f"| {t['target']} | {t['published']:+.4f} | {t['model']:+.4f} | {t['model_sd']:.4f} | {t['error']:+.4f} | "
          f"{t['implausibility']:.2f} |" for t in record["targets"]),
        "",
        f"Posterior sample: {record['posterior_note']} ({len(record['posterior'])} sets in calibration.json).",
    ]
    return "\n".join(lines) + "\n"
