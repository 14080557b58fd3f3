"""Tables that pivot safely and scenario conventions users expect (issue 16).

metrics.csv filtered on one ``level`` gives the city total once, values are whole yuan and whole
counts; scenarios are found by name; ``levers_set``/``levers_add`` change one lever of the parent
without restating the list; inherited titles are marked; sweeps and ensembles get their own folders.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from layers import InputError
from twin.cli import default_out
from twin.engine.metrics import DECIMALS, UNITS
from twin.policy import scenario as scenarios

ROOT = Path(__file__).resolve().parent.parent
SMALL = "extends: baseline\nname: small\nyears: {start: 2023, end: 2024}\nparams: {scale: 0.01, anchors: 0}\n"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_scenario.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def by_name(tmp_path_factory) -> Path:
    """A run started by name from a folder with its own scenarios/ (the parent, baseline, is the shipped one)."""
    cwd = tmp_path_factory.mktemp("cwd")
    (cwd / "scenarios").mkdir()
    (cwd / "scenarios" / "small.yaml").write_text(SMALL, encoding="utf-8")
    out = _cli("small", "--quiet", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return cwd / "out" / "small"


def _metrics(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "metrics.csv", keep_default_na=False)


def test_a_scenario_runs_by_name_into_its_default_folder(by_name):
    assert (by_name / "metrics.csv").is_file() and (by_name / "map.html").is_file()
    assert set(_metrics(by_name).scenario) == {"small"}


def test_a_pivot_by_level_gets_the_city_total_once(by_name):
    table = _metrics(by_name)
    revenue = table[table.metric == "revenue_cny"]
    city = revenue[revenue.level == "city"].set_index("year")["value"]
    by_level = revenue.pivot_table(index="level", columns="year", values="value", aggfunc="sum")
    assert set(by_level.index) == {"city", "zone", "district", "track"}
    for level in ("zone", "district", "track"):  # each breakdown adds up to the city (rounding: half a yuan a row)
        rows = (revenue.level == level).sum() / len(city)
        assert (by_level.loc[level] - city).abs().max() <= rows / 2, level
    zones = revenue[revenue.level == "zone"].pivot_table(index="zone", columns="year", values="value", aggfunc="sum")
    assert set(zones.index) == {"window", "core", "four", "wide"}  # no empty "all" key to double count
    assert (zones.sum() - city).abs().max() <= 2
    assert city.min() > 0
    # without the level filter a sum counts the city four times: the reason the column exists
    assert revenue.groupby("year")["value"].sum().div(city).round(6).eq(4).all()


def test_values_are_whole_yuan_and_whole_counts_with_the_unit_in_the_name(by_name):
    raw = pd.read_csv(by_name / "metrics.csv", dtype=str, keep_default_na=False)
    assert set(raw.metric) <= set(UNITS)
    for metric, values in raw.groupby("metric")["value"]:
        pattern = r"^-?\d+\.\d$|^-?\d+$" if DECIMALS.get(metric) == 1 else r"^-?\d+$"
        bad = [v for v in values if not re.match(pattern, v)]
        assert not bad, (metric, bad[:3])
    assert all(UNITS[m] == "CNY" for m in UNITS if m.endswith("_cny"))
    assert UNITS["compute_pflops"] == "PFLOPS"
    pflops = raw[raw.metric == "compute_pflops"]["value"].astype(float)
    assert (pflops > 0).all()


def test_a_missing_name_lists_the_known_names_in_one_line(tmp_path):
    out = _cli("no_such_case", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no_such_case: file: not found")
    assert "baseline" in lines[0] and "vouchers_250m" in lines[0]
    assert not (tmp_path / "out").exists()


def test_names_are_looked_up_in_the_working_folder_before_the_shipped_ones(tmp_path, monkeypatch):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "baseline.yaml").write_text("name: baseline\ntitle: {en: Mine}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert scenarios.load("baseline").title.en == "Mine"
    assert "baseline" in scenarios.known_names()
    monkeypatch.chdir(ROOT / "docs")  # no scenarios/ here: the shipped one
    assert scenarios.load("baseline").title.en == "Baseline: policies as announced"


def _write(tmp_path: Path, text: str, name: str = "case") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_levers_set_and_add_change_one_lever_and_keep_the_rest(tmp_path):
    parent = scenarios.load("baseline")
    path = _write(tmp_path, "extends: baseline\nname: case\n"
                            "levers_set: {compute_vouchers#0: {budget_cny_per_year: 250000000}, model_subsidies: null}\n"
                            "levers_add: [{kind: talent}]\n")
    child = scenarios.load(path)
    kinds = [lever.kind for lever in child.levers]
    assert kinds == [k for k in (lever.kind for lever in parent.levers) if k != "model_subsidies"] + ["talent"]
    assert child.levers[0].budget_cny_per_year == 250e6
    assert child.levers[0].max_share == parent.levers[0].max_share  # the other fields kept
    assert child.levers[1] == parent.levers[2]  # the fund untouched


def test_edits_apply_level_by_level_through_a_chain(tmp_path):
    _write(tmp_path, "extends: baseline\nname: mid\nlevers_add: [{kind: talent}]\n", "mid")
    path = _write(tmp_path, "extends: mid\nname: leaf\nlevers_set: {talent#0: {start_year: 2026}}\n")
    levers = scenarios.load(path).levers
    assert [lever.kind for lever in levers].count("talent") == 1
    assert levers[-1].start_year == 2026


@pytest.mark.parametrize("text, where, what", [
    ("levers_set: {parks#0: {}}", "levers_set.parks#0", "no such lever; the levers are compute_vouchers#0"),
    ("levers_set: {compute_vouchers#1: {}}", "levers_set.compute_vouchers#1", "no such lever"),
    ("levers_set: {compute_vouchers#0: 5}", "levers_set.compute_vouchers#0", "must be a mapping"),
    ("levers_set: [compute_vouchers#0]", "levers_set", "must map lever labels"),
    ("levers_add: {kind: talent}", "levers_add", "must be a list"),
    ("levers_add: [{kind: tax_holiday}]", f"levers.{len(scenarios.load('baseline').levers)}.kind", "unknown lever kind 'tax_holiday'"),
    ("levers_set: {compute_vouchers#0: {budget_cny_per_yr: 1}}", "levers.0.budget_cny_per_yr", "unknown key; did you mean 'budget_cny_per_year'?"),
])
def test_bad_lever_edits_are_one_line_errors(tmp_path, text, where, what):
    path = _write(tmp_path, f"extends: baseline\nname: case\n{text}\n")
    with pytest.raises(InputError) as caught:
        scenarios.load(path)
    assert caught.value.where == where and what in caught.value.what, str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_schema_documents_lever_edits():
    props = scenarios.json_schema()["properties"]
    assert props["levers_add"]["items"] == props["levers"]["items"]
    pattern = re.compile(props["levers_set"]["propertyNames"]["pattern"])
    assert pattern.match("compute_vouchers#0") and pattern.match("smart_om") and not pattern.match("tax_holiday#0")


def test_an_inherited_title_is_marked_and_names_the_child(tmp_path):
    child = scenarios.load(_write(tmp_path, "extends: baseline\nname: my_case\n", "my_case"))
    assert child.title.inherited
    assert child.title.en == "my_case (based on: Baseline: policies as announced)"
    assert child.title.zh.startswith("my_case") and "基准情景" in child.title.zh
    own = scenarios.load(_write(tmp_path, "extends: my_case\nname: own\ntitle: {zh: 我的, en: Mine}\n", "own"))
    assert not own.title.inherited and own.title.en == "Mine"
    assert not scenarios.load("baseline").title.inherited


def test_sweeps_ensembles_runs_and_comparisons_get_distinct_default_folders():
    spec, other = scenarios.load("baseline"), scenarios.load("no_policy")
    folders = [
        default_out(spec),
        default_out(spec, other),
        default_out(spec, ensemble=True),
        default_out(spec, ensemble=True, sweep=["growth_mu=0.05,0.08"]),
        default_out(spec, ensemble=True, sweep=["growth_sigma=0.2,0.3"]),
    ]
    assert len(set(folders)) == len(folders)
    assert folders[2] == Path("out/baseline_ensemble") and folders[3] == Path("out/baseline_sweep_growth_mu")


def test_the_labels_outputs_print_are_the_labels_levers_set_takes(tmp_path, stack):
    """One scheme: a run's metrics.csv lever labels each name, in levers_set, the lever that spent that money."""
    from twin.policy.hook import lever_labels
    from twin.simulation.run import simulate

    _write(tmp_path, SMALL + "levers:\n  - {kind: talent, cost_cny_per_year: 1.0e+8}\n  - {kind: compute_vouchers}\n"
                             "  - {kind: talent, cost_cny_per_year: 3.0e+8}\n", "two")
    spec = scenarios.load(tmp_path / "two.yaml")
    assert lever_labels(spec.levers) == ["talent#0", "compute_vouchers#0", "talent#1"]  # counted within a kind
    spend = simulate(spec, stack=stack).metrics.query("level == 'lever' and year == 2024").set_index("lever")["value"]
    assert set(spend.index) == {"talent#0", "compute_vouchers#0", "talent#1"}
    assert spend["talent#1"] > spend["talent#0"] > 0  # talent#1 is the larger budget, the third in the list
    child = scenarios.load(_write(tmp_path, "extends: two\nname: child\nlevers_set: {talent#1: null}\n"))
    assert [lever.cost_cny_per_year for lever in child.levers if lever.kind == "talent"] == [1e8]
