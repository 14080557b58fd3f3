"""Scenario files: YAML, validated by a pydantic schema, with ``extends`` inheritance.

A scenario says which years to run, on which grid, with which layers,
parameters and policy levers. It is given by path or by name (``baseline``:
./scenarios, then the shipped folder). A child that ``extends`` a parent
changes single levers with ``levers_set``/``levers_add`` instead of restating
the list, and without a title of its own gets one derived from its name and
flagged ``title.inherited``. Errors come out as :class:`layers.InputError`
naming the file, the key path and the problem, for the one-line CLI report.
"""

from __future__ import annotations

import difflib
import os
import reprlib
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

from layers import InputError

from ..engine.params import SHIPPED_CALIBRATION, Params
from ..engine.targets import LAST_TARGET_YEAR
from ..engine.values import Bool, Float, Int, Seed
from .hook import lever_labels
from .levers import KINDS, LEVER_CLASSES, LeverSpec
from .seek import Seek

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Title(_Strict):
    """A bilingual label. ``inherited`` is set when a scenario extends another without a title of its
    own: its title is then derived, e.g. "my_case (based on: Baseline: policies as announced)"."""

    zh: str = ""
    en: str = ""
    inherited: Bool = Field(False, description="set by extends, not by hand: the title was derived from the parent's")


class Years(_Strict):
    """The simulated span: the synthesized population is the base year ``start`` as it ends; the run
    simulates January of the next year to December of ``end``, and outputs label each year completed."""

    start: Int = Field(2023, ge=2000, le=2100)
    end: Int = Field(LAST_TARGET_YEAR, ge=2000, le=2100)

    @model_validator(mode="after")
    def _ordered(self) -> "Years":
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        if self.end == self.start:
            raise ValueError(f"end equals start ({self.start}): the run simulates the years after start, so it would run no month")
        if self.start > LAST_TARGET_YEAR:
            raise ValueError(f"start ({self.start}) is after {LAST_TARGET_YEAR}: a run is judged against the "
                             f"{LAST_TARGET_YEAR} targets in its last year up to {LAST_TARGET_YEAR}")
        return self


class GridSpec(_Strict):
    """The analysis grid."""

    cell_m: Float = Field(250.0, ge=50.0, le=5000.0, description="cell edge in metres")


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
    anchor_firms: str | None = Field(None, description="table of anchor firms (gis_data/anchor_firms.csv's columns)")
    anchor_revenue_series: str | None = Field(None, description="anchors' published revenue by year (gis_data/anchor_revenue_series.csv's columns)")
    compute_centres: str | None = Field(None, description="compute centres (gis_data/compute_centres.csv's columns)")
    zone_files: dict[str, str] = Field(default_factory=dict, description="zone id -> boundary file, e.g. an official 一园 boundary")
    repair: Bool = False


class Scenario(_Strict):
    """One scenario, after ``extends`` is resolved."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", max_length=100, description="used in output folder names, so at most 100 characters")
    title: Title = Field(default_factory=Title)
    description: str = ""
    seed: Seed = Field(1, description="a whole number from 0 to 2^64 - 1")
    years: Years = Field(default_factory=Years)
    step: str = Field("month", pattern="^month$", description="steps are months")
    grid: GridSpec = Field(default_factory=GridSpec)
    layers: LayerFiles = Field(default_factory=LayerFiles)
    calibration: str | None = Field(None, description="calibration file (JSON) the fitted parameters come from, relative to this file; default: the shipped twin/engine/calibration.json")
    params: dict[str, Any] = Field(default_factory=dict, description="agent parameter overrides by name (docs/parameters.md)")
    levers: list[LeverSpec] = Field(default_factory=list, description="policy levers, each {kind: ..., ...}")
    seek: Seek = Field(default_factory=Seek, description="bounds of goal seeking (--seek); see twin/policy/seek.py")
    source: str = Field("", exclude=True, description="the file this was read from")
    files: list[str] = Field(default_factory=list, exclude=True, description="set by load: that file and every parent it extends, child first")

    def calibration_file(self) -> Path:
        """The calibration file the parameters are built from: the scenario's own, resolved against its folder, or the shipped one."""
        if self.calibration is None:
            return SHIPPED_CALIBRATION
        return (Path(self.source).parent if self.source else Path.cwd()) / self.calibration

    def parameters(self, **overrides: Any) -> Params:
        """The run's parameter vector: priors, then the calibration file's fit, then ``params``, then ``overrides``."""
        return Params.from_calibration(self.calibration_file(), {**self.params, **overrides})

    def layer_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :func:`layers.load`, paths resolved against the scenario's folder."""
        base = Path(self.source).parent if self.source else Path.cwd()
        spec = self.layers
        files = {k: base / v for k, v in spec.model_dump(exclude={"zone_files", "repair"}).items() if v}
        return files | {"zone_files": {k: base / v for k, v in spec.zone_files.items()}, "repair": spec.repair, "cell_m": self.grid.cell_m}


def load(path: str | os.PathLike[str]) -> Scenario:
    """Read, resolve ``extends`` and validate a scenario file, given by path or by name (``baseline``)."""
    path = locate(path)
    merged = _resolve(path, ())
    merged.pop("extends", None)
    try:
        scenario = Scenario.model_validate(merged)
    except pydantic.ValidationError as exc:
        raise _input_error(path, exc) from None
    scenario = scenario.model_copy(update={"source": str(path), "files": [str(p) for p in chain(path)]})
    problem = scenario.seek.bounds_problem(scenario.levers)
    if problem is not None:
        raise InputError(path, *problem)
    try:  # names, ranges and the calibration file, and the smoothing scale against the grid; what the machine can run: policy.resources
        scenario.parameters().coarse_factor(scenario.grid.cell_m)
    except InputError as exc:
        if exc.file != "params":  # the calibration file itself is at fault
            raise
        raise InputError(path, f"params.{exc.where}", exc.what) from None
    return scenario


def chain(path: str | os.PathLike[str]) -> list[Path]:
    """The scenario file and every parent it ``extends``, child first, found as :func:`load` finds them
    (a parent found through ./scenarios changes a run as much as the child, so manifests hash them all)."""
    files = [locate(path).resolve()]
    while (parent := _read(files[-1]).get("extends")) is not None and len(files) <= MAX_EXTENDS:
        files.append(locate(parent, files[-1]).resolve())
    return files


def known_names() -> list[str]:
    """Scenario names findable by name: ./scenarios then the shipped folder."""
    folders = (Path.cwd() / "scenarios", SCENARIOS)
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob("*.y*ml")})


def locate(ref: str | os.PathLike[str], owner: Path | None = None) -> Path:
    """The file a scenario reference means: a path (relative to the ``owner`` file that extends it, else
    to the working folder) if it exists, else a name looked up beside the owner, in ./scenarios and then
    in the shipped scenarios, so that ``run_scenario.py baseline`` and ``extends: baseline`` work anywhere."""
    ref = Path(ref)
    base = owner.parent if owner is not None else None
    folders = ([base] if base is not None else []) + [Path.cwd() / "scenarios", SCENARIOS]
    names = [ref.name] if ref.suffix in (".yaml", ".yml") else [ref.name + ".yaml", ref.name + ".yml"]
    candidates = [base / ref if base is not None else ref]
    candidates += [folder / n for folder in folders for n in names] if ref.parent == Path(".") else []
    found = next((c for c in candidates if c.exists()), None)
    if found is not None and not found.is_file():
        where = ("file", "is not a regular file") if owner is None else ("extends", f"parent scenario {_brief(str(ref))!r} is not a regular file")
        raise InputError(owner or ref, *where)
    if found is None:
        known = f"known scenario names: {', '.join(known_names())}"
        if owner is None:
            raise InputError(ref, "file", f"not found; {known}")
        raise InputError(owner, "extends", f"parent scenario {_brief(str(ref))!r} not found; {known}")
    return found


MAX_FILE_BYTES = 1 << 20
"""A scenario file larger than this (1 MiB) is refused unread: real ones are a few kB."""

MAX_EXTENDS = 32
"""The longest ``extends`` chain followed; a deeper one is almost surely generated by mistake."""


def _read(path: Path) -> dict[str, Any]:
    """Parse one YAML 1.2 file into a mapping: no duplicate keys, no aliases, errors with line and column.

    ruamel.yaml's safe loader reads YAML 1.2, so ``1e-2`` is a number; aliases
    are refused outright (a few hundred bytes of nested aliases can expand to
    gigabytes), and a key given twice is an error rather than "the last wins".
    """
    _require_scenario_file(path)
    try:
        text = path.read_text(encoding="utf-8")
        loader = YAML(typ="safe", pure=True)
        for event in loader.parse(text):
            if isinstance(event, AliasEvent):
                raise InputError(path, _where(event.start_mark), "YAML aliases (*name) are not allowed in scenario files; write the values out")
        data = loader.load(text)
    except DuplicateKeyError as exc:
        raise InputError(path, _where(exc.problem_mark), f"duplicate key {_brief(_duplicate(exc.problem))}; give each key once") from None
    except MarkedYAMLError as exc:
        raise InputError(path, _where(exc.problem_mark), f"YAML syntax error: {_brief(exc.problem)}") from None
    except (YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(path, "yaml", _brief(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)) from None
    except OSError as exc:
        raise InputError(path, "file", f"cannot be read ({exc.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "top level", "a scenario must be a mapping of keys to values")
    _require_encodable(path, data, ())
    return data


def _require_encodable(path: Path, value: Any, where: tuple[str, ...]) -> None:
    """No text may hold an unpaired surrogate (YAML's "\\ud800"): UTF-8 cannot encode it, so a title holding one
    would fail only when the map is written, after the whole run, and a path holding one cannot be opened."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        for text in (key, item):
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise InputError(path, ".".join((*where, str(key))) or "top level",
                                     "holds an unpaired surrogate (such as \\ud800), which UTF-8 cannot encode") from None
        _require_encodable(path, item, (*where, str(key)))


def _require_scenario_file(path: Path) -> None:
    """A scenario must be an existing regular file of sane size (not a folder, FIFO or device)."""
    if not path.exists():
        raise InputError(path, "file", "not found")
    if not path.is_file():
        raise InputError(path, "file", "is not a regular file (a folder, pipe or device?)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(path, "file", f"is {path.stat().st_size:,} bytes; a scenario file is at most {MAX_FILE_BYTES:,}")


def _where(mark: Any) -> str:
    """``line L, column C`` of a YAML mark (1-based), or ``yaml`` without one."""
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "yaml"


def _duplicate(problem: str | None) -> str:
    """The key named in ruamel's duplicate-key message (which also quotes values, possibly huge)."""
    text = problem or ""
    start = text.find('"') + 1
    return text[start:text.find('"', start)] if start else text


def _brief(value: Any, limit: int = 80) -> str:
    """Text for an error message, cut short: an input value can be arbitrarily long."""
    text = value if isinstance(value, str) else reprlib.repr(value)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _resolve(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Merge a file over its ``extends`` parents (a path relative to the file, or a name), detecting cycles and bounding depth."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(p.name for p in (*chain, path))
        raise InputError(chain[-1], "extends", _brief(f"cycle: {cycle}", 300))
    if len(chain) >= MAX_EXTENDS:
        raise InputError(chain[0], "extends", f"the chain of parents is more than {MAX_EXTENDS} files deep")
    data = _read(path)
    parent = data.get("extends")
    if parent is None:
        return _edit_levers(path, data, data)
    if not isinstance(parent, str) or not parent.strip() or "\0" in parent:
        raise InputError(path, "extends", "must be the path or name of a scenario file")
    base = _resolve(locate(parent, path), (*chain, path))
    merged = _merge(base, {k: v for k, v in data.items() if k != "title"})
    merged["title"] = data["title"] if "title" in data else _inherited_title(data.get("name", path.stem), base)
    return _edit_levers(path, merged, data)


LEVER_EDITS = ("levers_set", "levers_add")
"""Keys that edit the lever list instead of replacing it: ``levers_set`` merges fields into (or, with
``null``, removes) the levers labelled ``kind#n`` (:func:`twin.policy.hook.lever_labels`); ``levers_add`` appends levers."""


def _edit_levers(path: Path, merged: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``merged`` with its levers edited by the file's own ``levers_set`` and ``levers_add``, so a child
    changes one lever without restating (and silently dropping) the parent's list; bad labels are one-line errors."""
    edits, added = data.get("levers_set") or {}, data.get("levers_add") or []
    if not isinstance(edits, dict):
        raise InputError(path, "levers_set", "must map lever labels (kind#n, n counted among levers of that kind, e.g. compute_vouchers#0) to fields")
    if not isinstance(added, list):
        raise InputError(path, "levers_add", "must be a list of levers, each {kind: ...}")
    rest = {k: v for k, v in merged.items() if k not in LEVER_EDITS}
    if not edits and not added:
        return rest
    levers = merged.get("levers") or []
    if not isinstance(levers, list):
        raise InputError(path, "levers", "must be a list of levers, each {kind: ...}")
    labels = {label: i for i, label in enumerate(lever_labels(levers))}
    out = list(levers)
    for label, fields in edits.items():
        index = labels.get(str(label), labels.get(f"{label}#0") if "#" not in str(label) else None)
        if index is None:
            raise InputError(path, f"levers_set.{label}", f"no such lever; the levers are {', '.join(labels) or 'none'}")
        if fields is not None and not isinstance(fields, dict):
            raise InputError(path, f"levers_set.{label}", "must be a mapping of the lever's fields, or null to remove it")
        out[index] = None if fields is None else _merge(out[index], fields)
    return rest | {"levers": [lever for lever in out if lever is not None] + added}


def _inherited_title(name: str, parent: dict[str, Any]) -> dict[str, Any]:
    """A title for a child without its own: its name, based on the parent's title, flagged ``inherited``,
    so a map never shows the parent's title as if it were the child's."""
    title = parent.get("title") if isinstance(parent.get("title"), dict) else {}
    parent_name = str(parent.get("name", ""))
    zh, en = title.get("zh") or parent_name, title.get("en") or parent_name
    return {"zh": f"{name}（基于：{zh}）", "en": f"{name} (based on: {en})", "inherited": True}


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
        return InputError(path, f"{where}.kind", f"unknown lever kind {_brief(err['ctx']['tag'])!r}; kinds are {', '.join(KINDS)}")
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
    props = schema["properties"]
    props["extends"] = {"type": "string", "description": "parent scenario, a path relative to this file or a name (baseline), whose values this one overrides"}
    props["levers_add"] = {"type": "array", "items": props["levers"]["items"],
                           "description": "levers appended to the parent's list (after levers_set)"}
    props["levers_set"] = {
        "type": "object",
        "description": "fields merged into the parent's levers by label kind#n, n counted among levers of that kind (compute_vouchers#0 is the first compute_vouchers lever; a bare kind means #0); null removes the lever",
        "propertyNames": {"pattern": f"^({'|'.join(KINDS)})(#[0-9]+)?$"},
        "additionalProperties": {"type": ["object", "null"]},
    }
    schema["properties"].pop("source", None)
    schema["properties"].pop("files", None)
    return schema
