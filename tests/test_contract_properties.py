"""The command-line contract, by property: any scenario file either runs (exit 0, complete outputs) or is
refused (exit 2, one ``error:`` line, nothing written). Hypothesis writes the files, valid and not; and the
Python API's constructor takes good arguments and refuses bad ones by name, before any work."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.outputs.folder import TOOL

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("manifest.json", "metrics.csv", "firms.parquet", "density.tif", "map.html")

names = st.one_of(st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), st.just("n" * 300))
numbers = st.one_of(st.floats(0.001, 0.005), st.sampled_from(["1e-3", "2e-3", "-1", "0", "1e9", "nan", "x", "[1, 2]", "~"]))
years = st.one_of(st.sampled_from(["{start: 2023, end: 2024}", "{start: 2024, end: 2023}", "{start: 2030, end: 2032}",
                                   "{start: 1900, end: 2024}", "{start: 2023}", "{start: x}"]))
levers = st.lists(st.one_of(
    st.sampled_from(["{kind: talent}", "{kind: parks}", "{kind: compute_vouchers}", "{kind: free_lunch}", "{kind: vision_fund, ticket_cny: 0.01}",
                     "{kind: vision_fund, zones: [moon]}", "{kind: compute_vouchers, budget_cny_per_year: -1}", "{}", "3"]),
), max_size=3)
extra = st.sampled_from(["", "yaers: 1\n", "params: {scale: 0.002}\n", "levers: []\n", "description: &a [*a]\n", "grid: {cell_m: 10}\n",
                         "seed: -1\n", "extends: nowhere\n"])


@st.composite
def scenario_files(draw) -> str:
    """A scenario file's text: mostly well-formed YAML with values, keys and levers in and out of range."""
    name = json.dumps(draw(names), ensure_ascii=False)
    lever_lines = "".join(f"  - {lever}\n" for lever in draw(levers))
    return (f"name: {name}\nyears: {draw(years)}\nparams: {{scale: {draw(numbers)}, anchors: 0}}\n"
            + (f"levers:\n{lever_lines}" if lever_lines else "") + draw(extra))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=scenario_files())
def test_every_scenario_file_runs_whole_or_is_refused_cleanly(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "s.yaml").write_text(text, encoding="utf-8")
        out = base / "out"
        proc = subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), str(base / "s.yaml"), "--out", str(out), "--quiet"],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        if proc.returncode == 0:
            assert all((out / name).is_file() for name in OUTPUTS), sorted(p.name for p in out.iterdir())
            assert json.loads((out / "manifest.json").read_text())["tool"] == TOOL
            assert all(line.startswith("warning: ") for line in proc.stderr.splitlines()), proc.stderr
        else:
            assert proc.returncode == 2, (text, proc.stderr[-3000:])
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (text, proc.stderr)
            assert len(lines[0]) < 600
        assert sorted(p.name for p in base.iterdir()) == (["out", "s.yaml"] if proc.returncode == 0 else ["s.yaml"])


class _WorkBegan(Exception):
    """Raised where the constructor's first real work would begin, once every argument has been checked."""


def _is_seed(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


api_arguments = {
    "seed": st.one_of(st.none(), st.integers(-3, 2**65), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3)),
    "levers": st.one_of(st.none(), st.just([]), st.text(max_size=4), st.integers(), st.lists(st.integers(), min_size=1, max_size=2)),
    "scenario": st.one_of(st.none(), st.just("baseline"), st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=1)),
    "stack": st.one_of(st.none(), st.text(max_size=3), st.integers()),
    "candidates": st.one_of(st.integers(-3, 300), st.floats(0, 300), st.booleans(), st.text(max_size=2)),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments=st.fixed_dictionaries({}, optional=api_arguments))
def test_the_constructor_takes_good_arguments_and_refuses_bad_ones_by_name_before_any_work(arguments: dict, stack) -> None:
    """Any mix of arguments either passes every check (and reaches the first real work) or raises a TypeError or
    ValueError naming a bad argument, before that work."""
    import dataclasses

    from twin.engine.params import Params
    from twin.simulation import model as model_module

    field = {f.name: f for f in dataclasses.fields(Params)}["candidates"]
    valid = {
        "seed": lambda v: v is None or _is_seed(v),
        "levers": lambda v: v is None or v == [],
        "scenario": lambda v: v is None or v == "baseline",
        "stack": lambda v: v is None,
        "candidates": lambda v: isinstance(v, int) and not isinstance(v, bool) and field.metadata["lo"] <= v <= field.metadata["hi"],
    }
    bad = [name for name, value in arguments.items() if not valid[name](value)]
    call = {**arguments, "stack": stack if arguments.get("stack") is None else arguments["stack"], "scale": 0.003}
    with mock.patch.object(model_module.Geography, "from_layers", side_effect=_WorkBegan), \
         mock.patch.object(model_module.layers, "load", side_effect=_WorkBegan):
        try:
            model_module.VisionValleyModel(**call)
        except _WorkBegan:
            assert not bad, f"{bad} passed the checks: {arguments!r}"
        except (TypeError, ValueError) as exc:
            assert bad, f"good arguments refused: {arguments!r}: {exc}"
            assert any(name in str(exc) for name in bad), (arguments, str(exc))
        else:
            raise AssertionError("the constructor finished without reaching its first work")


UNPRINTABLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _printable_line(line: str) -> bool:
    import unicodedata

    return not any(unicodedata.category(ch) in UNPRINTABLE for ch in line)


@settings(max_examples=300, deadline=None)
@given(value=st.text(), where=st.text(max_size=20))
def test_any_echoed_value_prints_as_one_line_without_control_characters(value: str, where: str) -> None:
    """layers.escape: whatever a file name, key or value holds, the printed error is one line, nothing hidden or coloured."""
    from layers import InputError, escape

    line = f"error: {InputError(value, where, f'unknown zone id(s) {value}')}"
    assert len(line.splitlines()) == 1 and _printable_line(line)
    assert escape(escape(value)) == escape(value)  # escaping twice (an error re-raised with a new place) changes nothing
    assert all(ch in escape(value) for ch in value if _printable_line(ch))  # printable text is kept as written


VALID = {"window", "core", "four", "wide"} | {p.stem for p in (ROOT / "scenarios").glob("*.yaml")}
"""Zone ids and scenario names that would make a slot valid (and the file run)."""
HOSTILE = st.one_of(st.text(min_size=1, max_size=12).filter(lambda v: v not in VALID),
                    st.sampled_from(["core\nerror: fake\x1b[31m", "a\rb", "\u2028x", "\x85", "\x00", "\x1b]0;pwned\x07"]))
SLOTS = {
    "zone id": lambda v: f"layers: {{zone_files: {{{json.dumps(v)}: zone.geojson}}}}\n",
    "layer path": lambda v: f"layers: {{water: {json.dumps(v + '.geojson')}}}\n",
    "extends": lambda v: f"extends: {json.dumps(v)}\n",
    "lever zone": lambda v: f"levers:\n  - {{kind: vision_fund, zones: [{json.dumps(v)}]}}\n",
    "title": lambda v: f"title: {{en: {json.dumps(v)}}}\nyears: {{start: 2027, end: 2027}}\n",
}
NUMBERS = st.sampled_from(["16.0", "true", "'16'", "18446744073709551616", ".nan", "-.inf", "1e400", "[16]"])
NUMBER_SLOTS = ("seed: {}\n", "params: {{candidates: {}}}\n", "years: {{start: {}, end: 2025}}\n",
                "levers:\n  - {{kind: vision_fund, deploy_years: {}}}\n", "seek: {{trials: {}}}\n",
                "levers:\n  - {{kind: compute_buildout, sites: [{{year: {}, pflops: 100}}]}}\n")


def _refused_cleanly(text: str) -> None:
    """Run the file through the command line's ``main`` in this process (as run_scenario.py would, without an
    interpreter's start-up per example): exit 2, one printable ``error:`` line, nothing written beside it."""
    import contextlib
    import io

    from twin import cli

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "s.yaml").write_text(text, encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = cli.main([str(base / "s.yaml"), "--out", str(base / "out"), "--quiet"])
        lines = err.getvalue().strip().splitlines()
        assert status == 2, (text, err.getvalue()[-3000:])
        assert len(lines) == 1 and lines[0].startswith("error: ") and _printable_line(lines[0]), (text, err.getvalue())
        assert sorted(p.name for p in base.iterdir()) == ["s.yaml"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slot=st.sampled_from(sorted(SLOTS)), value=HOSTILE)
def test_hostile_text_in_any_slot_is_refused_on_one_printable_line(slot: str, value: str) -> None:
    """A newline, an escape sequence or any other text where a zone id, path or parent is expected: one clean line."""
    _refused_cleanly("name: x\nparams: {scale: 0.002, anchors: 0}\n" + SLOTS[slot](value))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slot=st.sampled_from(NUMBER_SLOTS), value=NUMBERS)
def test_numbers_of_the_wrong_kind_are_refused_by_the_one_rule(slot: str, value: str) -> None:
    """A whole-number float, a boolean, quoted text, a seed past 2^64 or a non-finite number is never coerced."""
    _refused_cleanly("name: x\nparams: {scale: 0.002, anchors: 0}\n" + slot.format(value))
