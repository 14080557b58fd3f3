"""run_scenario.py end to end: the files it writes, their formats, determinism, comparisons and interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio

ROOT = Path(__file__).resolve().parent.parent
SMALL = """extends: {base}
name: {name}
years: {{start: 2023, end: 2025}}
params: {{scale: 0.01, anchors: 0}}
"""


def _scenario(tmp_path: Path, name: str = "small", base: str = "baseline") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SMALL.format(base=ROOT / "scenarios" / f"{base}.yaml", name=name), encoding="utf-8")
    return path


def _cli(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    _cli(_scenario(tmp), "--out", tmp / "out", "--quiet")
    return tmp / "out"


def test_the_main_job_runs_the_full_baseline_with_defaults(tmp_path):
    """The README's first command: no arguments, the full-scale baseline into out/baseline/."""
    out = _cli(cwd=tmp_path)
    folder = tmp_path / "out" / "baseline"
    assert sorted(p.name for p in folder.iterdir()) == ["density.tif", "firms.parquet", "manifest.json", "map.html", "metrics.csv"]
    assert "against the 2027 targets" in out.stdout and "core revenue 4000 亿元" in out.stdout
    assert "\r" not in out.stderr and "2027 simulated (48/48 months)" in out.stderr  # lines, not a bar, in a log
    assert (folder / "map.html").stat().st_size < 15e6


def test_a_run_without_a_terminal_says_each_stage_on_one_line(tmp_path):
    """No tty (a log): one plain line per stage and per simulated year, in order, each stamped with its second."""
    run = _cli(_scenario(tmp_path), "--out", tmp_path / "o", "--seed", 3)
    assert "provenance" not in run.stdout and "growth_mu" not in run.stdout  # parameter names only with --verbose
    lines = run.stderr.splitlines()
    stages = ["small: simulating 2024-2025", "small: 2024 simulated (12/24 months)",
              "small: 2025 simulated (24/24 months)", "writing metrics.csv"]
    found = [next(i for i, line in enumerate(lines) if stage in line) for stage in stages]
    assert found == sorted(found) and len(lines) == len(stages)
    assert all(line.split()[1] == "s" and line.split()[0].isdigit() for line in lines)


def test_an_english_summary_answers_first_in_cny_bn_and_ends_with_the_file_to_open(tmp_path):
    """--lang en: money in CNY bn (千亿 only beside its meaning), the scaled run's full-city estimates judged against the absolute targets,
    what one run cannot show, provenance with --verbose after the answer, and the map's path last."""
    out = _cli(_scenario(tmp_path), "--out", tmp_path / "o", "--lang", "en", "--verbose").stdout
    lines = out.splitlines()
    assert "亿" not in out.replace("(千亿)", "") and "core revenue, target CNY 400 bn" in out
    assert "each target figure is a full-city estimate: anchors + other firms / 0.01" in out
    core = next(line for line in lines if "core revenue, target" in line)
    assert " estimate CNY " in core and " of CNY 400.0 bn " in core  # the absolute target, not 400 bn x 0.01
    assert "a single run does not show how wide the result would be" in out
    assert lines.index("provenance:") > next(i for i, line in enumerate(lines) if "core revenue, target" in line)
    assert lines[-1] == f"open {tmp_path / 'o' / 'map.html'}" and lines[-2] == f"wrote {tmp_path / 'o'}/"


def test_metrics_are_tidy(small_run):
    table = pd.read_csv(small_run / "metrics.csv", keep_default_na=False)
    assert list(table.columns) == ["scenario", "seed", "year", "level", "metric", "zone", "district", "track", "lever", "value"]
    assert set(table["year"]) == {2023, 2024, 2025}
    city = table[table.level == "city"]
    assert (city.zone == "").all() and (city.district == "").all() and (city.track == "").all()
    assert {"revenue_cny", "firms", "talent", "leaders_100bn", "compute_pflops"} <= set(city.metric)
    assert set(table[table.zone != ""].zone) == {"window", "core", "four", "wide"}
    assert len(set(table[table.district != ""].district)) == 13


def test_firms_are_geoparquet_and_density_is_a_yearly_geotiff(small_run):
    firms = gpd.read_parquet(small_run / "firms.parquet")
    assert firms.crs.to_epsg() == 4326 and set(firms["year"]) == {2025}
    assert {"track", "tier", "revenue_cny", "employees", "zone", "district"} <= set(firms.columns)
    assert firms.geometry.x.between(118.3, 120.8).all() and firms.geometry.y.between(29.1, 30.6).all()
    with rasterio.open(small_run / "density.tif") as src:
        assert src.crs.to_epsg() == 4549 and src.count == 3
        assert src.descriptions == ("2023", "2024", "2025")
        assert src.read(3).sum() > 0


def test_manifest_records_what_produced_the_run(small_run):
    manifest = json.loads((small_run / "manifest.json").read_text(encoding="utf-8"))
    run = manifest["runs"][0]
    assert run["seed"] == 1 and run["scenario"]["name"] == "small"
    assert {"districts", "anchors", "zones", "scenario", "anchor_firms", "calibration"} <= set(run["inputs_sha256"])
    assert manifest["versions"]["mesa"] and manifest["versions"]["numpy"]
    assert set(run["targets_2027"]) == {"total_scale_cny", "revenue_cny", "leaders_100bn"}
    assert run["timings_s"]["run_s"] > 0


def test_same_scenario_and_seed_give_the_same_bytes(tmp_path, small_run):
    _cli(_scenario(tmp_path), "--out", tmp_path / "again", "--quiet")
    for name in ("metrics.csv", "firms.parquet", "density.tif", "map.html"):
        assert (tmp_path / "again" / name).read_bytes() == (small_run / name).read_bytes(), name
    _cli(_scenario(tmp_path), "--out", tmp_path / "seed2", "--quiet", "--seed", "2")
    assert (tmp_path / "seed2" / "metrics.csv").read_bytes() != (small_run / "metrics.csv").read_bytes()


def test_compare_writes_the_differences_and_a_comparison_map(tmp_path):
    a, b = _scenario(tmp_path, "core", "fund_core_focus"), _scenario(tmp_path, "spread", "fund_dispersed")
    out = _cli(a, "--compare", b, "--out", tmp_path / "cmp")
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv", keep_default_na=False, encoding="utf-8-sig")
    assert {"mean_a", "mean_b", "difference", "ci90_low", "ci90_high", "n"} <= set(table.columns)
    row = table[(table.level == "city") & (table.metric == "revenue_cny") & (table.year == 2025)]
    assert row["difference"].iloc[0] == pytest.approx(row["mean_b"].iloc[0] - row["mean_a"].iloc[0])
    assert (tmp_path / "cmp" / "map.html").exists() and (tmp_path / "cmp" / "core" / "map.html").exists()
    assert "spread − core, 2025, 1 paired seed" in out.stdout
    assert "core (seed 1): 2025 simulated" in out.stderr and "spread (seed 1): 2025 simulated" in out.stderr
    assert out.stderr.index("spread (seed 1): 2025") < out.stderr.index("writing comparison.csv")


def _cpu_seconds(pid: int) -> float:
    """CPU time a process has used (user + system, from /proc), so a test can wait for work rather than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_interrupted_run_leaves_no_output_folder(tmp_path):
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_scenario.py"), "--out", str(tmp_path / "out")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while _cpu_seconds(proc.pid) < 6.0:  # mid-run by the work done, not the clock: layers loaded, the baseline being simulated
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []
