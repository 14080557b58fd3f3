"""Paired --compare: the same seeds for both scenarios, paired 90 % intervals, per-scenario subfolders, spend per yuan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from twin.outputs.tables import comparison_table
from twin.policy import scenario
from twin.studies.seeds import member_seeds

ROOT = Path(__file__).resolve().parent.parent
SMALL = """extends: {base}
name: {name}
years: {{start: 2023, end: {end}}}
params: {{scale: 0.02, anchors: 0}}
"""


def _scenario(tmp_path: Path, name: str, base: str, end: int = 2025) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SMALL.format(base=ROOT / "scenarios" / f"{base}.yaml", name=name, end=end), encoding="utf-8")
    return path


def _cli(*args, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, encoding="utf-8-sig", na_values={"ci90_low": [""], "ci90_high": [""]})


def test_paired_table_has_the_t_interval_of_the_differences():
    """B − A per seed, its mean and the 90 % t interval, with a row one run lacks counted as 0."""
    keys = {"year": 2024, "level": "city", "metric": "revenue_cny", "zone": "", "district": "", "track": "", "lever": ""}
    a = [SimpleNamespace(metrics=pd.DataFrame([{**keys, "value": v}])) for v in (10.0, 20.0, 30.0)]
    b = [SimpleNamespace(metrics=pd.DataFrame([{**keys, "value": v}, {**keys, "level": "lever", "metric": "spend_cny", "lever": "x#0", "value": 5.0}]))
         for v in (13.0, 21.0, 35.0)]
    table = comparison_table(a, b).set_index("metric")
    d = np.array([3.0, 1.0, 5.0])
    half = stats.t.ppf(0.95, 2) * d.std(ddof=1) / np.sqrt(3)
    row = table.loc["revenue_cny"]
    assert (row["mean_a"], row["mean_b"], row["difference"], row["n"]) == (20.0, 23.0, 3.0, 3)
    assert (row["ci90_low"], row["ci90_high"]) == pytest.approx((3.0 - half, 3.0 + half))
    assert table.loc["spend_cny", "difference"] == 5.0 and table.loc["spend_cny", "mean_a"] == 0.0


def _run(name: str, revenue: dict[str, float], spend: float) -> SimpleNamespace:
    """A stand-in run of 2025: city headlines, core revenue by zone (summing to the city's) and one lever's spend."""
    keys = {"year": 2025, "zone": "", "district": "", "track": "", "lever": ""}
    rows = [{**keys, "level": "city", "metric": m, "value": v} for m, v in
            (("revenue_cny", sum(revenue.values())), ("total_scale_cny", 2.5 * sum(revenue.values())), ("firms", 10.0), ("leaders_100bn", 0.0))]
    rows += [{**keys, "level": "zone", "zone": zone, "metric": "revenue_cny", "value": v} for zone, v in revenue.items()]
    rows += [{**keys, "level": "lever", "metric": "spend_cny", "lever": "vision_fund#0", "value": spend}]
    return SimpleNamespace(scenario=SimpleNamespace(name=name, years=SimpleNamespace(end=2025), levers=[]), metrics=pd.DataFrame(rows))


def test_a_comparison_summary_names_who_gained_and_who_lost_and_what_a_yuan_bought():
    """The gain of B comes from somewhere: the zones that lost most are named with the figures comparison.csv holds."""
    from twin.studies.compare import Comparison, summary

    a = [_run("a", {"core": 10e9, "four": 5e9, "window": 3e9}, 1e9)]
    b = [_run("b", {"core": 10.1e9, "four": 7e9, "window": 2.5e9}, 3e9)]
    text = summary(Comparison(a, b, comparison_table(a, b)), "en")
    zones = next(line for line in text.splitlines() if "core revenue by zone (CNY bn)" in line)
    assert "gained most four +2.00, core +0.10; lost most window -0.50" in zones
    assert "revenue per yuan: +0.80" in text  # (+1.6 bn of 2025 revenue) / (+2 bn of extra spend to 2025)
    assert "core revenue (CNY bn)" in text and "+1.60" in text and "亿" not in text.replace("(千亿)", "")
    assert "core revenue by zone (亿元): gained most four +20.00" in summary(Comparison(a, b, comparison_table(a, b)), "zh")


def test_single_seed_compare_keeps_each_scenarios_outputs_and_reports_revenue_per_yuan(tmp_path, stack):
    from twin.studies.compare import place_names

    a, b = _scenario(tmp_path, "base", "baseline"), _scenario(tmp_path, "vouchers", "vouchers_250m")
    out = _cli(a, "--compare", b, "--out", tmp_path / "cmp", "--seed", "5", "--lang", "en")
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "cmp"
    for name in ("base", "vouchers"):
        assert {"map.html", "firms.parquet", "metrics.csv", "density.tif", "manifest.json"} <= {p.name for p in (folder / name).iterdir()}
        assert set(_read(folder / name / "metrics.csv")["seed"]) == {5}
    table = _read(folder / "comparison.csv")
    spend = table[(table.level == "lever") & (table.lever == "compute_vouchers#0") & (table.year == 2025)].iloc[0]
    assert spend["mean_b"] > spend["mean_a"] > 0 and spend["difference"] == pytest.approx(spend["mean_b"] - spend["mean_a"])
    assert (table["n"] == 1).all() and table["ci90_low"].isna().all()
    assert "single seed" in (folder / "map.html").read_text(encoding="utf-8")
    for page in ("map.html", "base/map.html", "vouchers/map.html"):  # --lang reaches every map of the comparison
        assert '"lang":"en"' in (folder / page).read_text(encoding="utf-8") and '"lang":"zh"' not in (folder / page).read_text(encoding="utf-8"), page
    assert "vouchers − base, 2025, 1 paired seed" in out.stdout and "divided by the extra public spend" in out.stdout
    assert "亿" not in out.stdout.replace("(千亿)", "") and "CNY bn" in out.stdout  # English money, 千亿 only beside its meaning
    assert out.stdout.splitlines()[-1] == f"open {folder / 'map.html'}"  # the answer first, the file to open last
    zones = table[(table.level == "zone") & (table.metric == "revenue_cny") & (table.year == 2025)].set_index("zone")["difference"]
    lost = next(line for line in out.stdout.splitlines() if "core revenue by zone" in line).split("lost most")[1]
    name = place_names(SimpleNamespace(layers=stack), "en").get(zones.idxmin())  # the biggest loser, by its English name
    assert (name in lost.split(",")[0]) if zones.min() < 0 else lost.strip() == "none"
    assert [run["seed"] for run in json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["runs"]] == [5, 5]


def test_ensemble_compare_runs_pairs_on_dask_and_a_scenario_against_itself_differs_by_nothing(tmp_path):
    """Both sides run on the ensemble's member seeds in Dask worker processes; identical scenarios give zero everywhere."""
    a, b = _scenario(tmp_path, "one", "baseline", 2024), _scenario(tmp_path, "two", "baseline", 2024)
    out = _cli(a, "--compare", b, "--out", tmp_path / "cmp", "--ensemble", "2", "--workers", "2", "--seed", "7")
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "cmp"
    for name in ("one", "two"):
        assert set(_read(folder / name / "metrics.csv")["seed"]) == set(member_seeds(7, 2))
    table = _read(folder / "comparison.csv")
    assert (table["n"] == 2).all() and (table["difference"] == 0).all() and (table["ci90_high"] == 0).all()
    assert "2 paired seeds" in out.stdout and "no extra spend" in out.stdout
    assert "two vs one: 2/2 members done" in out.stderr  # the pairs' progress, a line each in a log
    assert "pairs agree on the sign" in (folder / "map.html").read_text(encoding="utf-8")


def test_compare_with_a_sweep_is_one_line_and_status_2(tmp_path):
    a = _scenario(tmp_path, "base", "baseline")
    out = _cli(a, "--compare", a, "--ensemble", "2", "--sweep", "growth_mu=0.1,0.2")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error: arguments: --compare")


def test_an_ensemble_comparison_never_shares_a_default_folder_with_a_one_seed_one():
    """A planner's one-seed comparison is not silently replaced by an ensemble comparison of the same pair."""
    from twin import cli

    a, b = scenario.load("baseline"), scenario.load("vouchers_250m")
    single = cli._parser().parse_args(["baseline", "--compare", "vouchers_250m"])
    paired = cli._parser().parse_args(["baseline", "--compare", "vouchers_250m", "--ensemble", "4"])
    folders = {cli._out(single, a, b), cli._out(paired, a, b), cli.default_out(a, ensemble=True), cli.default_out(a)}
    assert len(folders) == 4 and cli._out(paired, a, b).name == "baseline_vs_vouchers_250m_ensemble"
