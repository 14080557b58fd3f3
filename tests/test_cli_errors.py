"""Bad input ends with exit status 2, one ``error:`` line naming file, place and problem, and no output."""

from __future__ import annotations

import json
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
    "wrong type": ("name: x\nyears: {start: soon}\n", r"bad\.yaml: years\.start: must be a whole number, got 'soon'"),
    "negative budget": ("name: x\nlevers:\n  - {kind: compute_vouchers, budget_cny_per_year: -1}\n", r"bad\.yaml: levers\.0\.budget_cny_per_year: Input should be greater than or equal to 0"),
    "end before start": ("name: x\nyears: {start: 2027, end: 2023}\n", r"bad\.yaml: years: end \(2023\) is before start \(2027\)"),
    "absurd agent count": ("name: x\nparams: {scale: 10, firms_full: 1000000}\n", r"bad\.yaml: params\.scale: .* agents, growing to about .* over 4 years, needing about .* GiB"),
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


IN_PROCESS = {
    # one rule for numbers (twin/engine/values.py): no coercion of booleans, whole-number floats or text
    "seed true": ("name: x\nseed: true\n", r"bad\.yaml: seed: must be a whole number, got True"),
    "seed 2^64": ("name: x\nseed: 18446744073709551616\n", r"bad\.yaml: seed: must be a whole number from 0 to 2\^64 - 1"),
    "string year": ("name: x\nyears: {start: '2023', end: 2025}\n", r"bad\.yaml: years\.start: must be a whole number, got '2023'"),
    "zero months": ("name: x\nyears: {start: 2027, end: 2027}\n", r"bad\.yaml: years: end equals start \(2027\): .* would run no month"),
    "whole-number float count": ("name: x\nparams: {candidates: 16.0}\n", r"bad\.yaml: params\.candidates: must be a whole number written without a decimal point, got 16\.0"),
    "boolean count": ("name: x\nlevers:\n  - {kind: vision_fund, deploy_years: true}\n", r"bad\.yaml: levers\.0\.deploy_years: must be a whole number, got True"),
    "boolean amount": ("name: x\nlevers:\n  - {kind: vision_fund, total_cny: true}\n", r"bad\.yaml: levers\.0\.total_cny: must be a number, got True"),
    "neighbourhood below a cell": ("name: x\nparams: {neighbourhood_m: 100}\n", r"bad\.yaml: params\.neighbourhood_m: 100 m is not a whole multiple of the 250 m grid cell"),
    "neighbourhood off the grid": ("name: x\ngrid: {cell_m: 300}\n", r"bad\.yaml: params\.neighbourhood_m: 1000 m is not a whole multiple of the 300 m grid cell .*use 900, 1200"),
    "seek bound nan": ("name: x\nlevers: [{kind: vision_fund}]\nseek: {levers: [{lever: 0, fields: {total_cny: {low: .nan, high: 1e9}}}]}\n",
                       r"bad\.yaml: seek\.levers\.0\.fields\.total_cny\.low: must be a finite number, got nan"),
    "seek bound beyond the field": ("name: x\nlevers: [{kind: vision_fund}]\nseek: {levers: [{lever: 0, fields: {total_cny: {low: 0, high: 1e20}}}]}\n",
                                    r"bad\.yaml: seek\.levers\.0\.fields\.total_cny: high 1e\+20 is above the field's range \(it must be at most 1e\+12\)"),
    "seek on a count": ("name: x\nlevers: [{kind: vision_fund}]\nseek: {levers: [{lever: 0, fields: {deploy_years: {low: 1, high: 5}}}]}\n",
                        r"bad\.yaml: seek\.levers\.0\.fields\.deploy_years: vision_fund has no real-valued field 'deploy_years'"),
    "nul byte in a layer path": ('name: x\nlayers: {land: "la\\0nd.tif"}\n', r"la\\x00nd\.tif: file: the path holds a NUL byte"),
    "unpaired surrogate in a title": ('name: x\ntitle: {en: "a\\ud800"}\n', r"bad\.yaml: title\.en: holds an unpaired surrogate \(such as \\ud800\)"),
    "zone with no cell at 5 km": ("name: x\ngrid: {cell_m: 5000}\nparams: {neighbourhood_m: 5000}\n",
                                  r"window_park\.geojson: extent: zone window covers no 5000 m cell of the city"),
}
"""Cases run through the command line's own ``main`` in this process: the same parsing, checks and printing
as a subprocess, without paying an interpreter's start-up for each."""


@pytest.fixture
def main(tmp_path, capsys, monkeypatch):
    """``run_scenario.py bad.yaml --out OUT --quiet EXTRA...`` through :func:`twin.cli.main` in this process."""
    from twin import cli

    monkeypatch.chdir(ROOT)

    def run(text: str, *extra: str) -> subprocess.CompletedProcess:
        (tmp_path / "bad.yaml").write_text(text, encoding="utf-8")
        status = cli.main([str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "out"), "--quiet", *extra])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess([], status, captured.out, captured.err)

    return run


@pytest.mark.parametrize("case", IN_PROCESS, ids=list(IN_PROCESS))
def test_bad_values_get_one_line_and_status_2_before_any_work(tmp_path, main, case):
    text, pattern = IN_PROCESS[case]
    _assert_clean_failure(main(text), pattern, tmp_path)


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
    """python -m twin.studies.sensitivity and twin.studies.validation check --out first: one line, status 2, no traceback, nothing written."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    for command, extra in (("twin.studies.sensitivity", ["--out", str(blocker / "docs")]),
                           ("twin.studies.sensitivity", ["--trajectories", "1", "--out", str(tmp_path / "docs")]),
                           ("twin.studies.validation", ["--out", str(tmp_path / "missing" / "validation.csv")])):
        result = subprocess.run([sys.executable, "-m", command, *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def _no_control_characters(text: str) -> bool:
    import unicodedata

    return not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text.rstrip("\n"))


def test_echoed_values_cannot_split_or_colour_the_error_line(tmp_path):
    """A zone id, a scenario path, an --out and a stray argument holding a newline and an ANSI escape are echoed escaped."""
    hostile = "core\nerror: fake\x1b[31m"
    out = _run(tmp_path, f"name: x\nlayers: {{zone_files: {{{json.dumps(hostile)}: {ROOT / 'gis_data' / 'window_park.geojson'}}}}}\n")
    _assert_clean_failure(out, r"unknown zone id\(s\) core\\nerror: fake\\x1b\[31m; the zones are window", tmp_path)
    assert _no_control_characters(out.stderr)
    out = subprocess.run([sys.executable, "run_scenario.py", str(tmp_path / "no\nsuch\x1b[31m.yaml")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    _assert_clean_failure(out, r"no\\nsuch\\x1b\[31m\.yaml: file: not found", tmp_path)
    assert _no_control_characters(out.stderr)
    mine = tmp_path / "my\nthesis\x1b[2J"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    out = subprocess.run([sys.executable, "run_scenario.py", str(BASELINE), "--out", str(mine), "--quiet", "stray\nerror: x"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    _assert_clean_failure(out, r"unrecognized arguments: stray\\nerror: x", tmp_path)
    out = subprocess.run([sys.executable, "run_scenario.py", str(BASELINE), "--out", str(mine), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    _assert_clean_failure(out, r"my\\nthesis\\x1b\[2J holds files that are not an output of this tool", tmp_path)
    assert _no_control_characters(out.stderr) and (mine / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_seed_beyond_64_bits_on_the_command_line_is_refused(tmp_path, main):
    out = main("name: x\n", "--seed", str(2**64))
    _assert_clean_failure(out, r"arguments: --seed: must be a whole number from 0 to 2\^64 - 1, got 18446744073709551616", tmp_path)


def test_geopackage_with_several_layers_is_refused_naming_them(tmp_path, main):
    """GDAL would read the first layer silently (here a 100 km² decoy): the file is refused, its layers listed."""
    import shapely

    window = gpd.read_file(ROOT / "gis_data" / "window_park.geojson")
    decoy = gpd.GeoDataFrame(geometry=[shapely.box(120.2, 30.1, 120.3, 30.2)], crs="EPSG:4326")
    decoy.to_file(tmp_path / "zones.gpkg", layer="decoy")
    window.to_file(tmp_path / "zones.gpkg", layer="official_window")
    out = main("name: x\nlayers: {zone_files: {window: zones.gpkg}}\n")
    _assert_clean_failure(out, r"zones\.gpkg: layers: holds 2 layers \(decoy, official_window\); a layer file must hold one", tmp_path)


def test_all_zero_land_raster_is_refused(tmp_path, main):
    import rasterio

    with rasterio.open(ROOT / "gis_data" / "land.tif") as src:
        profile, data = src.profile, src.read(1)
    with rasterio.open(tmp_path / "zero.tif", "w", **profile) as dst:
        dst.write((data * 0).astype(data.dtype), 1)
    out = main("name: x\nlayers: {land: zero.tif}\n")
    _assert_clean_failure(out, r"zero\.tif: band 1: every value over the city is 0: no land would be developable", tmp_path)


def test_huge_sparse_land_raster_is_refused_from_its_header(tmp_path, main):
    """200,000 x 130,000 cells of 1.2 m over the city in a 1 MB sparse file: refused by size, not read for minutes."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "width": 200_000, "height": 130_000, "count": 1, "dtype": "uint8", "crs": "EPSG:4549", "nodata": 0,
               "transform": Affine(1.2, 0, 360_000, 0, -1.2, 3_380_000), "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate", "sparse_ok": True}
    with rasterio.open(tmp_path / "huge.tif", "w", **profile) as dst:
        dst.write(np.ones((512, 512), "uint8"), 1, window=Window(100_000, 60_000, 512, 512))
    assert (tmp_path / "huge.tif").stat().st_size < 2_000_000
    out = main("name: x\nlayers: {land: huge.tif}\n")
    _assert_clean_failure(out, r"huge\.tif: size: the part covering the city is [\d,]+ x [\d,]+ cells .* at most 400,000,000 are read", tmp_path)


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
