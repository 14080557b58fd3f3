"""What the page builds its controls from: the scenario JSON Schema and every agent parameter's metadata."""

from __future__ import annotations

import dataclasses
import functools

from ..engine.params import Params
from ..policy import scenario as scenarios


@functools.cache
def schema() -> dict:
    """The scenario schema (``run_scenario.py --schema``), the fitted parameter values, and per parameter its
    default, unit, allowed range, documentation and (for lever responses) evidence grade."""
    fitted = Params.from_calibration()
    params = [{"name": f.name, "default": getattr(fitted, f.name), "unit": f.metadata["unit"], "lo": f.metadata["lo"],
               "hi": f.metadata["hi"], "doc": f.metadata["doc"], "grade": f.metadata.get("grade"),
               "integer": isinstance(f.default, int) and not isinstance(f.default, bool)}
              for f in dataclasses.fields(Params) if f.metadata]
    return {"scenario": scenarios.json_schema(), "params": params}
