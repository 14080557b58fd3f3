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

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Title(_Strict):
    """A bilingual label."""

    zh: str = ""
    en: str = ""


class Years(_Strict):
    """The simulated span: the state starts as the base year ``start`` and runs to the end of ``end``."""

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
    loc = [str(p) for p in err["loc"]]
    where = ".".join(loc) or "top level"
    if err["type"] == "extra_forbidden":
        parent = Scenario
        for part in loc[:-1]:
            field = parent.model_fields.get(part)
            parent = field.annotation if field and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
            if parent is None:
                break
        known = list(parent.model_fields) if parent else []
        near = difflib.get_close_matches(loc[-1], known, n=1)
        return InputError(path, where, f"unknown key{f'; did you mean {near[0]!r}?' if near else ''}")
    return InputError(path, where, err["msg"].removeprefix("Value error, "))


def json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for editor completion."""
    schema = Scenario.model_json_schema()
    schema["properties"]["extends"] = {"type": "string", "description": "parent scenario file whose values this one overrides"}
    schema["properties"].pop("source", None)
    return schema
