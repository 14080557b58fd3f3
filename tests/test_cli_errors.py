"""Bad input ends with exit status 2, one ``error:`` line naming file, place and problem, and no output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.yaml"


def _run(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "run_scenario.py", str(path), "--out", str(tmp_path / "out"), "--quiet", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


CASES = {
    "yaml syntax": ("name: x\nyears: {start: 2023, end: 2027\n", r"bad\.yaml: line 3, column 1: YAML syntax error"),
    "unknown key": ("name: x\nyaers: {start: 2023}\n", r"bad\.yaml: yaers: unknown key; did you mean 'years'\?"),
    "wrong type": ("name: x\nyears: {start: soon}\n", r"bad\.yaml: years\.start: Input should be a valid integer"),
    "negative budget": ("name: x\nlevers:\n  - {kind: compute_vouchers, budget_cny_per_year: -1}\n", r"bad\.yaml: levers\.0\.budget_cny_per_year: Input should be greater than or equal to 0"),
    "end before start": ("name: x\nyears: {start: 2027, end: 2023}\n", r"bad\.yaml: years: end \(2023\) is before start \(2027\)"),
    "absurd agent count": ("name: x\nparams: {scale: 10, firms_full: 1000000}\n", r"bad\.yaml: params\.scale: .* agents, needing about .* GiB"),
    "unknown parameter": ("name: x\nparams: {growth_sigmaa: 0.1}\n", r"bad\.yaml: params\.growth_sigmaa: unknown parameter; did you mean growth_sigma\?"),
    "unknown lever": ("name: x\nlevers:\n  - {kind: free_lunch}\n", r"bad\.yaml: levers\.0\.kind: unknown lever kind 'free_lunch'; kinds are compute_vouchers"),
    "missing extends": ("extends: nowhere\nname: x\n", r"bad\.yaml: extends: parent scenario 'nowhere' not found"),
    "missing layer file": ("name: x\nlayers: {anchors: missing.gpkg}\n", r"missing\.gpkg: file: not found"),
    "self-referencing yaml": ("name: x\ndescription: &a [*a]\n", r"bad\.yaml: line 2, column \d+: YAML aliases .* are not allowed"),
    "duplicate key": ("name: x\nlevers: []\nlevers: []\n", r"bad\.yaml: line 3, column 1: duplicate key levers"),
    "years 2030-2032": ("name: x\nyears: {start: 2030, end: 2032}\n", r"bad\.yaml: years: start \(2030\) is after 2027"),
    "no firms": ("name: x\nparams: {scale: 0.0001, firms_full: 1000}\n", r"bad\.yaml: params\.scale: .* leaves about 0\.1 firms"),
    "300-character name": (f"name: {'n' * 300}\n", r"bad\.yaml: name: String should have at most 100 characters"),
    "long run past memory": ("name: x\nyears: {start: 2000, end: 2100}\n", r"bad\.yaml: params\.scale: .* growing to about"),
    "unknown zone in a lever": ("name: x\nlevers:\n  - {kind: vision_fund, zones: [moon]}\n", r"bad\.yaml: levers\.0\.zones: unknown zone\(s\) moon"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_scenario_gets_one_line_and_status_2(tmp_path, case):
    text, pattern = CASES[case]
    out = _run(tmp_path, text)
    _assert_clean_failure(out, pattern, tmp_path)


def test_extends_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: bad\nname: a\n")
    out = _run(tmp_path, "extends: a\nname: b\n")
    _assert_clean_failure(out, r"extends: cycle: bad\.yaml -> a\.yaml -> bad\.yaml", tmp_path)


def test_folders_as_scenario_parent_or_layer_are_reported(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    out = subprocess.run([sys.executable, "run_scenario.py", str(tmp_path / "dir.yaml"), "--out", str(tmp_path / "out")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    _assert_clean_failure(out, r"dir\.yaml: file: is not a regular file", tmp_path)
    out = _run(tmp_path, "extends: dir.yaml\nname: x\n")
    _assert_clean_failure(out, r"bad\.yaml: extends: parent scenario 'dir\.yaml' is not a regular file", tmp_path)
    (tmp_path / "water.geojson").mkdir()
    out = _run(tmp_path, "name: x\nlayers: {water: water.geojson}\n")
    _assert_clean_failure(out, r"water\.geojson: file: is a folder", tmp_path)


def test_extends_chain_thousands_deep_is_reported(tmp_path):
    (tmp_path / "p0.yaml").write_text("name: x\n")
    for i in range(1, 3000):
        (tmp_path / f"p{i}.yaml").write_text(f"extends: p{i - 1}.yaml\n")
    out = _run(tmp_path, "extends: p2999.yaml\n")
    _assert_clean_failure(out, r"bad\.yaml: extends: the chain of parents is more than 32 files deep", tmp_path)


def test_compare_with_a_different_grid_is_reported_before_running(tmp_path):
    (tmp_path / "other.yaml").write_text("name: y\ngrid: {cell_m: 500}\n")
    out = _run(tmp_path, "name: x\n", "--compare", str(tmp_path / "other.yaml"))
    _assert_clean_failure(out, r"other\.yaml: grid: --compare needs the same grid", tmp_path)


def test_layer_file_without_crs_is_reported(tmp_path):
    anchors = gpd.read_file(ROOT / "gis_data" / "anchors.geojson")
    anchors.set_crs(None, allow_override=True).to_file(tmp_path / "anchors.shp")
    out = _run(tmp_path, "name: x\nlayers: {anchors: anchors.shp}\n")
    _assert_clean_failure(out, r"anchors\.shp: crs: the file has no coordinate reference system", tmp_path)


def test_bad_arguments_are_one_line_too(tmp_path):
    out = subprocess.run([sys.executable, "run_scenario.py", "--seed", "many"], cwd=ROOT, capture_output=True, text=True)
    _assert_clean_failure(out, r"arguments: command line: argument --seed: invalid int value", tmp_path)
    out = subprocess.run([sys.executable, "run_scenario.py", str(tmp_path / "none.yaml")], cwd=ROOT, capture_output=True, text=True)
    _assert_clean_failure(out, r"none\.yaml: file: not found", tmp_path)


def _assert_clean_failure(out: subprocess.CompletedProcess, pattern: str, tmp_path: Path) -> None:
    import re

    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_study_commands_refuse_a_bad_output_folder_before_running(tmp_path):
    """python -m twin.sensitivity and twin.validate check --out first: one line, status 2, no traceback, nothing written."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    for command, extra in (("twin.sensitivity", ["--out", str(blocker / "docs")]),
                           ("twin.sensitivity", ["--trajectories", "1", "--out", str(tmp_path / "docs")]),
                           ("twin.validate", ["--out", str(tmp_path / "missing" / "validation.csv")])):
        result = subprocess.run([sys.executable, "-m", command, *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


ARGUMENT_CASES = {
    "scheduler inproc": (["--ensemble", "2", "--scheduler", "inproc://192.168.1.2/123/4"],
                         r"arguments: --scheduler: 'inproc://.*' is an in-process address"),
    "scheduler ucx": (["--ensemble", "2", "--scheduler", "ucx://127.0.0.1:8786"],
                      r"arguments: --scheduler: 'ucx://127\.0\.0\.1:8786': the ucx:// protocol is not supported"),
    "scheduler port not a number": (["--ensemble", "2", "--scheduler", "tcp://127.0.0.1:http"],
                                    r"arguments: --scheduler: .*the port must be a whole number from 1 to 65535, got 'http'"),
    "out longer than PATH_MAX": (["--out", "/tmp/" + "/".join(["d" * 200] * 21)],
                                 r"argument --out: is \d+ bytes long as an absolute path; this file system takes 4096"),
    "out name longer than NAME_MAX": (["--out", "o" * 256], r"argument --out: has a name of 256 bytes; this file system takes 255"),
}


@pytest.mark.parametrize("case", ARGUMENT_CASES, ids=list(ARGUMENT_CASES))
def test_bad_environment_arguments_get_one_line_before_any_work(tmp_path, case):
    """A scheduler address Dask cannot use and an --out the file system cannot hold: one line, status 2, nothing run.

    The other address forms are checked in tests/test_peers.py without a process each."""
    extra, pattern = ARGUMENT_CASES[case]
    if "--out" in extra:
        out = subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), str(BASELINE), "--quiet", *extra], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert not any(tmp_path.iterdir())
    else:
        out = _run(tmp_path, "name: x\nyears: {start: 2023, end: 2024}\nparams: {scale: 0.002, anchors: 0}\n", *extra)
    _assert_clean_failure(out, pattern, tmp_path)
