"""A request's scenario, checked by the command line's own loader and bounds, with the command line's one-line errors.

The browser sends scenario text, never a path: the text is written to a fresh
``studio.yaml`` in the studio's work area and read by :func:`twin.policy.scenario.load`,
then :func:`twin.policy.resources.check_resources`, exactly as ``run_scenario.py
studio.yaml`` would. Keys that name files (``layers``, ``calibration``, an ``extends``
that is a path rather than a shipped name) are refused, so no file path is ever taken from
the browser.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from layers import InputError

from ..engine.values import seed_problem
from ..outputs.folder import write_file
from ..policy import scenario as scenarios
from ..policy.resources import check_resources
from ..policy.scenario import Scenario

MAX_BODY = 256 * 1024
"""Largest request body read (256 KiB); a scenario is a few kB."""

FILE_NAME = "studio.yaml"
"""The name a request's scenario is read under, and so the file its errors name."""


def read_body(body: bytes) -> dict:
    """The JSON object of a request body, or an :class:`InputError`."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError("request", "body", f"is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError("request", "body", 'must be a JSON object {"scenario_yaml": ..., "seed": ..., "members": ...}')
    return data


def scenario_of(data: dict, workdir: Path) -> tuple[Scenario, int, int, str]:
    """The checked scenario, seed, members and scenario text of a run request."""
    text = data.get("scenario_yaml")
    if not isinstance(text, str):
        raise InputError("request", "scenario_yaml", "must be the scenario's YAML text")
    _refuse_paths(text)
    folder = workdir / "inputs" / secrets.token_hex(8)
    folder.mkdir(parents=True)
    path = folder / FILE_NAME
    write_file(path, text)
    try:
        spec = scenarios.load(path)
        seed = spec.seed if data.get("seed") is None else data["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed_problem(seed):
            raise InputError("arguments", "seed", seed_problem(seed) if isinstance(seed, int) else f"must be a whole number, got {seed!r}")
        members = check_members(data.get("members", 1))
        check_resources(spec)
    except InputError as exc:
        raise InputError(FILE_NAME if Path(exc.file) == path else exc.file, exc.where, exc.what) from None
    return spec, seed, members, text


def check_members(members: object) -> int:
    """The number of paired members: a whole number from 1 to 8."""
    if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= 8:
        raise InputError("arguments", "members", f"must be a whole number from 1 to 8, got {members!r}")
    return members


def _refuse_paths(text: str) -> None:
    """Refuse scenario keys that would make the studio read a file the browser names."""
    try:
        data = YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, RecursionError):
        return  # the loader reports it, with line and column
    if not isinstance(data, dict):
        return
    layer_files = data.get("layers")
    if isinstance(layer_files, dict) and any(value for key, value in layer_files.items() if key != "repair"):
        raise InputError(FILE_NAME, "layers", "the studio takes no file paths from the browser; run a scenario with "
                                              "its own layer files with run_scenario.py")
    if data.get("calibration") is not None:
        raise InputError(FILE_NAME, "calibration", "the studio takes no file paths from the browser; run a scenario with "
                                                   "its own calibration file with run_scenario.py")
    parent = data.get("extends")
    if isinstance(parent, str) and ("/" in parent or "\\" in parent or parent.startswith(".")):
        raise InputError(FILE_NAME, "extends", f"must name a scenario ({', '.join(scenarios.known_names())}), not a path")


def known_scenarios() -> dict[str, dict]:
    """The scenarios the picker offers (./scenarios, then the shipped ones) that name no files of their own."""
    found = {}
    for name in scenarios.known_names():
        try:
            spec = scenarios.load(name)
        except InputError:
            continue  # a broken file in ./scenarios is the command line's to report
        if not any(v for k, v in spec.layers.model_dump().items() if k != "repair") and spec.calibration is None:
            found[name] = offered(spec)
    return found


def offered(spec: Scenario) -> dict:
    """A resolved scenario as the page edits it: JSON without defaults, but every lever whole (with its kind)."""
    return spec.model_dump(mode="json", exclude_defaults=True) | {
        "name": spec.name, "levers": [lever.model_dump(mode="json") for lever in spec.levers]}
