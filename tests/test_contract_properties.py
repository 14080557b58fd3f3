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
