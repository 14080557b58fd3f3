"""The command-line contract, by property: any scenario file either runs (exit 0, complete outputs) or is
refused (exit 2, one ``error:`` line, nothing written). Hypothesis writes the files, valid and not."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

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
