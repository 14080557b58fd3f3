"""Goal seeking: the schema, the Pareto front and the pick, and ``--seek`` end to end on real Dask processes.

The end-to-end run tries 6 settings of two levers x 2 paired members on a
tiny city (scale 0.005, no anchor firms, 2023-2024); a second run is killed
part way and resumed, and must give the same bytes; best.yaml must run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import kill_midway

from twin.engine.targets import TARGETS_2027
from twin.policy import scenario
from twin.studies.seek import judged_targets, pareto_front, pick_best, space, summary

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}


def cli(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_scenario.py", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """Vouchers and the fund on a tiny city, with a seek: section bounding the vouchers' budget and start year."""
    folder = tmp_path_factory.mktemp("scenario")
    data = {
        "extends": str(scenario.SCENARIOS / "baseline.yaml"), "name": "small",
        "years": {"start": 2023, "end": 2024}, "params": {"scale": 0.005, "anchors": 0},
        "levers": [{"kind": "compute_vouchers", "budget_cny_per_year": 1e8},
                   {"kind": "vision_fund", "total_cny": 3e9, "zones": ["window", "core"]}],
        "seek": {"levers": [{"lever": 0, "fields": {"budget_cny_per_year": {"low": 0, "high": 5e8}}, "start_year": [2023, 2024]},
                            {"lever": 1, "zones": [["core"], ["window", "core"], []], "optional": False}],
                 "probability": 0.5},
    }
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_pareto_front_and_pick():
    table = pd.DataFrame({"trial": [0, 1, 2, 3], "cost_cny": [5.0, 3.0, 3.0, 9.0], "p_all_targets": [0.5, 0.5, 0.9, 1.0]})
    assert pareto_front(table).tolist() == [False, False, True, True]
    table["meets_probability"] = table["p_all_targets"] >= 0.95
    assert pick_best(table) == 3
    table["meets_probability"] = table["p_all_targets"] >= 0.5
    assert pick_best(table) == 1  # cheapest meeting it, first on ties
    table["meets_probability"] = False
    assert pick_best(table) == 3  # none meets it: the most probable



def test_the_summary_says_reachable_only_when_the_pick_meets_the_probability(small):
    """The verdict line follows the picked trial: "reachable" when it meets P >= probability, "NOT reachable" otherwise."""
    spec = scenario.load(small)
    table = pd.DataFrame({"trial": [0, 1], "cost_cny": [5e8, 1e8], "p_all_targets": [0.9, 0.3],
                          **{f"p_{m}": [0.9, 0.3] for m in TARGETS_2027}})
    for probability, says in ((0.8, "  reachable within the bounds: P(all three targets) = 90% >= 80%"),
                              (0.95, "  NOT reachable within the bounds at P >= 95%: the most probable trial (0)")):
        table["meets_probability"] = table["p_all_targets"] >= probability
        text = summary(spec, table, pick_best(table), probability, 2, "", 2027)
        assert text.splitlines()[1].startswith(says), text


def test_defaults_and_absolute_targets_for_full_city_estimates(small):
    """At scale 0.005 the trials' full-city estimates meet the absolute targets, not targets x 0.005; the tiny
    city has anchors: 0, and the note says the estimate then leaves the anchors out."""
    spec = scenario.load(small)
    targets, note = judged_targets(spec)
    assert targets.tolist() == [t for t, _ in TARGETS_2027.values()]
    assert "full-city estimate: anchors + other firms / 0.005" in note and "anchors = 0 it leaves the anchors out" in note
    bare = spec.model_copy(update={"seek": type(spec.seek)()})
    entries = space(bare)
    assert [e.lever for e in entries] == [0, 1] and all(e.optional for e in entries)
    assert entries[0].fields["budget_cny_per_year"].high == 2e8 and entries[1].fields["total_cny"].high == 6e9


def test_a_seek_entry_naming_a_missing_lever_is_an_input_error(small, tmp_path):
    data = yaml.safe_load(small.read_text(encoding="utf-8"))
    data["seek"]["levers"][0]["lever"] = 7
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    run = cli(path, "--seek", "--out", tmp_path / "out")
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "seek.levers.0.lever" in run.stderr


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("seek") / "out"
    run = cli(small, "--seek", "--trials", 6, "--ensemble", 2, "--workers", 2, "--seed", 4, "--out", out)
    assert run.returncode == 0, run.stderr
    return out, run


def test_seek_writes_the_front_and_a_runnable_best(reference, tmp_path):
    out, run = reference
    table = pd.read_csv(out / "pareto.csv")
    assert len(table) == 6 and table["trial"].tolist() == list(range(6))
    for column in ("cost_cny", "p_all_targets", *(f"p_{m}" for m in TARGETS_2027), "compute_vouchers#0.budget_cny_per_year",
                   "compute_vouchers#0.start_year", "compute_vouchers#0.on", "vision_fund#0.zones"):
        assert column in table, column
    assert table["compute_vouchers#0.budget_cny_per_year"].between(0, 5e8).all()
    assert set(table["vision_fund#0.zones"]) <= {"core", "window+core", "all"}
    verdict = next(line.strip() for line in run.stdout.splitlines() if "reachable within the bounds" in line)
    reachable = bool((table["p_all_targets"] >= 0.5).any())  # the scenario's seek.probability
    assert verdict.startswith("reachable within the bounds: ") == reachable and verdict.startswith("NOT reachable") == (not reachable)
    assert "full-city estimate: anchors + other firms / 0.005" in run.stdout
    assert (out / "pareto.png").stat().st_size > 10_000
    best = scenario.load(out / "best.yaml")
    assert best.name == "small_best" and best.params["scale"] == 0.005
    ran = cli(out / "best.yaml", "--out", tmp_path / "best", "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "best" / "metrics.csv").exists()


def test_killed_seek_resumes_to_the_same_bytes(reference, small, tmp_path):
    out = tmp_path / "killed"
    kill_midway([str(small), "--seek", "--trials", "6", "--ensemble", "2",
                 "--seed", "4", "--quiet", "--out", str(out)], REPO, ENV, out / "members", "batch*/p*_m*.npz", 3)
    assert not (out / "pareto.csv").exists()
    run = cli(small, "--seek", "--trials", 6, "--ensemble", 2, "--seed", 4, "--quiet", "--resume", "--out", out)
    assert run.returncode == 0, run.stderr
    for name in ("pareto.csv", "best.yaml"):
        assert (out / name).read_bytes() == (reference[0] / name).read_bytes(), name
