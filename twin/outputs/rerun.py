"""Rerunning a single run from its manifest: ``python run_scenario.py --from-manifest out/x/manifest.json``.

A run's manifest records the resolved scenario, the seed, the parameter vector,
every input file with its SHA-256 and the writing options. The rerun takes
the scenario and seed from there and checks, before any work, that every data
file (layers, tables, calibration) still has the recorded hash and that the
scenario still resolves to the recorded parameter vector, so the run it makes
is the recorded one and writes the same bytes (the manifest aside: its
timings and command differ). The scenario files themselves are not needed:
the resolved scenario is in the manifest.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from layers import InputError

from ..policy.scenario import Scenario
from .folder import TOOL
from .manifest import file_sha256


@dataclass
class Rerun:
    """What a manifest says to run and how to write it."""

    spec: Scenario
    seed: int
    png: bool
    lang: str
    firm_years: list[int]
    frames: bool


def read_rerun(path: str | Path) -> Rerun:
    """The run a manifest records, after checking that its inputs are unchanged; any problem is an :class:`InputError`."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, "file", f"cannot be read as a manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("tool") != TOOL:
        raise InputError(path, "tool", f"is not a manifest of {TOOL}")
    runs = manifest.get("runs")
    if not isinstance(runs, list) or len(runs) != 1 or "params" not in runs[0] or "options" not in manifest:
        raise InputError(path, "runs", "--from-manifest reruns a single run's manifest (run_scenario.py SCENARIO, "
                                       "written by this version); this one is another kind or older")
    run = runs[0]
    _check_inputs(path, run)
    try:
        spec = Scenario.model_validate(run["scenario"]).model_copy(update={"source": run["scenario_file"]})
    except pydantic.ValidationError as exc:
        raise InputError(path, "runs.0.scenario", f"no longer a valid scenario: {exc.errors()[0]['msg']}") from None
    resolved = dataclasses.asdict(spec.parameters())
    changed = sorted(k for k in set(resolved) | set(run["params"]) if resolved.get(k) != run["params"].get(k))
    if changed:
        raise InputError(path, "runs.0.params", f"this code resolves other parameters than the run used ({', '.join(changed[:5])})")
    options: dict[str, Any] = manifest["options"]
    return Rerun(spec, int(run["seed"]), bool(options["png"]), str(options["lang"]), [int(y) for y in options["firm_years"]],
                 bool(options.get("frames", False)))


def _check_inputs(path: Path, run: dict[str, Any]) -> None:
    """Every data file the run read must still be there with the recorded SHA-256."""
    for key, file in sorted(run["input_files"].items()):
        if key.startswith("scenario"):
            continue  # the resolved scenario is in the manifest
        recorded = run["inputs_sha256"][key]
        if not Path(file).is_file():
            raise InputError(path, f"input_files.{key}", f"{file} is gone; the run cannot be reproduced without it")
        if file_sha256(Path(file)) != recorded:
            raise InputError(path, f"input_files.{key}", f"{file} has changed since the run (SHA-256 differs from the recorded one)")
