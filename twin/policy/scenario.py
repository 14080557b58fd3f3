"""Scenario files: YAML, validated by a pydantic schema, with ``extends`` inheritance.

A scenario says which years to run, on which grid, with which layers,
parameters and policy levers. Errors come out as :class:`layers.InputError`
naming the file, the key path and the problem, for the one-line CLI report.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from layers import InputError

from ..engine.params import Params
from .levers import KINDS, LEVER_CLASSES, LeverSpec
from .seek import Seek

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Title(_Strict):
    """A bilingual label."""

    zh: str = ""
    en: str = ""


class Years(_Strict):
    """The simulated span: the synthesized population is the base year ``start`` as it ends; the run
    simulates January of the next year to December of ``end``, and outputs label each year completed."""

    start: int = Field(2023, ge=2000, le=2100)
    end: int = Field(2027, ge=2000, le=2100)

    @model_validator(mode="after")
    def _ordered(self) -> "Years":
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class GridSpec(_Strict):
    """The analysis grid."""

    cell_m: float = Field(250.0, ge=50.0, le=5000.0, description="cell edge in metres")


class LayerFiles(_Strict):
    """User files that replace shipped layers (paths relative to the scenario file)."""

    districts: str | None = None
    anchors: str | None = None
    zones: str | None = None
    district_stats: str | None = None
    land: str | None = Field(None, description="developable-land layer: a raster of weights 0..1, or polygons with weight (0..1) or developable (0/1)")
    water: str | None = None
    urban: str | None = None
    metro: str | None = None
    zone_files: dict[str, str] = Field(default_factory=dict, description="zone id -> boundary file, e.g. an official 一园 boundary")
    repair: bool = False


class Scenario(_Strict):
    """One scenario, after ``extends`` is resolved."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    title: Title = Field(default_factory=Title)
    description: str = ""
    seed: int = Field(1, ge=0)
    years: Years = Field(default_factory=Years)
    step: str = Field("month", pattern="^month$", description="steps are months")
    grid: GridSpec = Field(default_factory=GridSpec)
    layers: LayerFiles = Field(default_factory=LayerFiles)
    params: dict[str, Any] = Field(default_factory=dict, description="agent parameter overrides by name (docs/parameters.md)")
    levers: list[LeverSpec] = Field(default_factory=list, description="policy levers, each {kind: ..., ...}")
    seek: Seek = Field(default_factory=Seek, description="bounds of goal seeking (--seek); see twin/policy/seek.py")
    source: str = Field("", exclude=True, description="the file this was read from")

    def layer_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :func:`layers.load`, paths resolved against the scenario's folder."""
        base = Path(self.source).parent if self.source else Path.cwd()
        spec = self.layers
        files = {k: base / v for k, v in spec.model_dump(exclude={"zone_files", "repair"}).items() if v}
        return files | {"zone_files": {k: base / v for k, v in spec.zone_files.items()}, "repair": spec.repair, "cell_m": self.grid.cell_m}


def load(path: str | os.PathLike[str]) -> Scenario:
    """Read, resolve ``extends`` and validate a scenario file."""
    path = Path(path)
    merged = _resolve(path, ())
    merged.pop("extends", None)
    try:
        scenario = Scenario.model_validate(merged)
    except pydantic.ValidationError as exc:
        raise _input_error(path, exc) from None
    try:
        params = Params().with_overrides(scenario.params)
        params.check_memory(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except InputError as exc:
        raise InputError(path, f"params.{exc.where}", exc.what) from None
    return scenario.model_copy(update={"source": str(path)})


def _read(path: Path) -> dict[str, Any]:
    """Parse one YAML file into a mapping, reporting syntax errors with line and column."""
    if not path.exists():
        raise InputError(path, "file", "not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        raise InputError(path, where, f"YAML syntax error: {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(path, "yaml", str(exc).splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "top level", "a scenario must be a mapping of keys to values")
    return data


def _resolve(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Merge a file over its ``extends`` parents (relative to the file), detecting cycles."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise InputError(chain[-1], "extends", f"cycle: {cycle}")
    data = _read(path)
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise InputError(path, "extends", "must be the path or name of a scenario file")
    target = (path.parent / parent).with_suffix(".yaml") if not parent.endswith((".yaml", ".yml")) else path.parent / parent
    if not target.exists():
        raise InputError(path, "extends", f"parent scenario {parent!r} not found (looked for {target})")
    return _merge(_resolve(target, (*chain, path)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; the child's values win, lists are replaced whole."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _input_error(path: Path, exc: pydantic.ValidationError) -> InputError:
    """The first validation error, as file / key path / message, with a near-name hint for unknown keys."""
    err = exc.errors()[0]
    raw = list(err["loc"])
    if raw[:1] == ["levers"] and len(raw) > 2 and raw[2] in KINDS:
        del raw[2]  # the union tag pydantic inserts after the lever's index
    loc = [str(p) for p in raw]
    where = ".".join(loc) or "top level"
    if err["type"] == "union_tag_invalid":
        return InputError(path, f"{where}.kind", f"unknown lever kind {err['ctx']['tag']!r}; kinds are {', '.join(KINDS)}")
    if err["type"] == "union_tag_not_found":
        return InputError(path, where, f"a lever needs a kind, one of {', '.join(KINDS)}")
    if err["type"] == "extra_forbidden":
        owner = _owner(tuple(err["loc"][:-1]))
        near = difflib.get_close_matches(loc[-1], list(owner.model_fields), n=1) if owner else []
        return InputError(path, where, f"unknown key{f'; did you mean {near[0]!r}?' if near else ''}")
    return InputError(path, where, err["msg"].removeprefix("Value error, "))


def _owner(loc: tuple) -> type[BaseModel] | None:
    """The schema class that holds the key at ``loc`` (following lever kinds), for name hints."""
    owner: type[BaseModel] | None = Scenario
    for i, part in enumerate(loc):
        if i == 2 and loc[0] == "levers" and part in KINDS:
            owner = LEVER_CLASSES[part]
            continue
        if owner is None or isinstance(part, int):
            continue
        field = owner.model_fields.get(part)
        annotation = field.annotation if field else None
        inner = getattr(annotation, "__args__", (annotation,))
        owner = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return owner


def json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for editor completion."""
    schema = Scenario.model_json_schema()
    schema["properties"]["extends"] = {"type": "string", "description": "parent scenario file whose values this one overrides"}
    schema["properties"].pop("source", None)
    return schema
