"""Identification of a calibration: how much of each fitted parameter's search range its posterior still covers.

History matching keeps every candidate the data do not rule out. A
parameter whose posterior spans most of its search range was not pinned by
the targets: its "fitted" value is only the best of a flat set, and calling
it FITTED would claim more than the data gave. Such a parameter is labelled
``unidentified`` here, in calibration.json, in docs/calibration.md and in
docs/parameters.md. Pairwise correlations across the posterior show trade-offs
(two parameters identified only in combination).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

UNIDENTIFIED_SHARE = 0.6
"""A posterior spanning more than this share of the search range leaves the parameter unidentified."""
FITTED_LABEL, UNIDENTIFIED_LABEL = "FITTED", "unidentified"


def identification(posterior: list[dict[str, float]], search: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per parameter: posterior min, max, span as a share of the search range and its label; pairwise correlations."""
    params = {}
    for name, (lo, hi) in search.items():
        values = np.array([member[name] for member in posterior if name in member], float)
        share = float((values.max() - values.min()) / (hi - lo)) if len(values) and hi > lo else 0.0
        params[name] = {"posterior_min": round(float(values.min()), 5) if len(values) else None,
                        "posterior_max": round(float(values.max()), 5) if len(values) else None,
                        "span_share": round(share, 3),
                        "status": UNIDENTIFIED_LABEL if share > UNIDENTIFIED_SHARE or len(values) < 2 else FITTED_LABEL}
    correlations = {}
    if len(posterior) >= 3:
        for a, b in combinations(sorted(search), 2):  # names in order, so a pair's key does not depend on the search's order
            x = np.array([[m[a], m[b]] for m in posterior if a in m and b in m], float)
            if len(x) >= 3 and x.std(axis=0).min() > 0:
                correlations[f"{a} ~ {b}"] = round(float(np.corrcoef(x.T)[0, 1]), 3)
    return {"threshold": UNIDENTIFIED_SHARE, "members": len(posterior), "parameters": params, "correlations": correlations}


def status(record: dict[str, Any], name: str) -> str:
    """The label of a fitted parameter in a calibration record: FITTED, or unidentified (also when never assessed)."""
    found = record.get("identification", {}).get("parameters", {}).get(name)
    return found["status"] if found else UNIDENTIFIED_LABEL


def markdown(ident: dict[str, Any]) -> list[str]:
    """The identification table and the correlations, as Markdown lines."""
    lines = [
        (f"Identification ({ident['members']} posterior members): a parameter whose posterior spans more than "
         f"{ident['threshold']:.0%} of its search range is **unidentified**: the targets do not pin it, and its value is "
         "the best of a nearly flat set, not a measurement."),
        "",
        "| parameter | posterior min | posterior max | span / search range | status |",
        "|---|---|---|---|---|",
        *(f"| `{k}` | {v['posterior_min']:g} | {v['posterior_max']:g} | {v['span_share']:.0%} | {v['status']} |"
          for k, v in ident["parameters"].items() if v["posterior_min"] is not None),
        "",
    ]
    if ident["correlations"]:
        lines += ["Posterior correlations: " + "; ".join(f"{k} {r:+.2f}" for k, r in ident["correlations"].items()) + ".", ""]
    return lines
