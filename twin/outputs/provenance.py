"""Where each reported figure comes from: fitted to published data, assumed, or derived by a stated relation.

The run summary prints these lines so a reader knows which figures the data
support (fitted), which rest on documented assumptions, and which are built
on a user-set multiplier (the total scale) and so cannot test a target.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.params import SHIPPED_CALIBRATION, Params, identified, read_calibration
from ..engine.targets import MULTIPLIER_TARGETS


def provenance_lines(overrides: Mapping[str, Any], calibration: Path = SHIPPED_CALIBRATION) -> list[str]:
    """Three lines: fitted parameters (and to what, from which calibration file), how many are assumptions, and the derived figures."""
    record = read_calibration(calibration)
    params = Params.from_calibration(calibration, dict(overrides))
    fields = dataclasses.fields(Params)
    fitted = [f.name for f in fields if f.name in record["fitted"]]
    set_here = [name for name in fitted if name in overrides]
    assumed = [f.name for f in fields if "ASSUMPTION" in f.metadata["doc"] and f.name not in fitted]
    shown = ", ".join(f"{n}={getattr(params, n):g}" + (" (set by the scenario)" if n in set_here else "")
                      + ("" if identified(record, n) else " (unidentified: its posterior spans most of its search range)") for n in fitted)
    return [
        "provenance:",
        f"  fitted:  {shown or f'none (no fit in {calibration})'}"
        + (f" -- to {record['fitted_to']}" if fitted else ""),
        f"  assumed: {len(assumed)} of {len(fields)} parameters are documented ASSUMPTIONs (docs/parameters.md)",
        (f"  derived: {', '.join(MULTIPLIER_TARGETS)} = core revenue x (1 + related_multiplier={params.related_multiplier:g}), "
         "a user-set multiplier, not a measurement: targets built on it are not tested by the model"),
    ]
