"""One member specification for every study: ``--no-posterior`` changes ``--ensemble``, ``--compare --ensemble``,
``--attribute`` and ``--seek`` alike, pairs share their draw, and the flag is an error where no member draws.
The lever responses are drawn per member within their evidence ranges (reproducibly, paired, never over a
scenario's own value), and widen the intervals that ``--freeze-responses`` narrows to seed and parameter noise.

The end-to-end runs use one of the baseline's levers on a tiny city (scale 0.003, no anchor firms, 2023-2024)
and one member, through the command line's ``main`` on one real Dask cluster shared by the studies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.cli import main
from twin.engine.params import SHIPPED_CALIBRATION, read_calibration
from twin.policy import scenario
from twin.policy.evidence import response_fields
from twin.studies.seeds import MemberSpec, draw_responses, member_seeds

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
TINY = {"extends": str(scenario.BASELINE), "name": "tiny", "years": {"start": 2023, "end": 2024},
        "params": {"scale": 0.003, "anchors": 0},
        "levers_set": {"vision_fund": None, "compute_buildout": None, "model_subsidies": None}}


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_scenario.py", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def scheduler():
    """One local Dask cluster (a real worker process) for every study here: its start-up is most of a tiny study."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny scenario and a variant with more voucher money, for the paired comparison."""
    folder = tmp_path_factory.mktemp("members")
    tiny, more = folder / "tiny.yaml", folder / "more.yaml"
    tiny.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    more.write_text(yaml.safe_dump({"extends": str(tiny), "name": "more",
                                    "levers_set": {"compute_vouchers": {"budget_cny_per_year": 1.0e9}}}), encoding="utf-8")
    return tiny, more


def _members(out: Path) -> np.ndarray:
    """Every member file's metric values, in file order: what the members computed."""
    paths = sorted(out.rglob("p*_m*.npz"))
    assert paths, f"no member files in {out}"
    return np.concatenate([np.load(p)["value"] for p in paths])


def _pairs(out: Path) -> np.ndarray:
    """The paired comparison's per-scenario means (a --compare folder keeps no member files)."""
    table = pd.read_csv(out / "comparison.csv", keep_default_na=False, encoding="utf-8-sig")
    return table.filter(like="mean").to_numpy(float)


STUDIES = {
    "ensemble": (("--ensemble", 1), _members),
    "compare": (("--ensemble", 1, "--compare", "{more}"), _pairs),
    "attribute": (("--attribute", "--ensemble", 1), _members),
    "seek": (("--seek", "--trials", 1, "--ensemble", 1), _members),
}


@pytest.mark.parametrize("study", list(STUDIES))
def test_no_posterior_changes_every_study_of_members(files, scheduler, tmp_path, study):
    """The posterior's draws move the fitted parameters, so the same members give other values without them."""
    tiny, more = files
    args, read = STUDIES[study]
    args = [str(a).format(more=more) for a in args]
    results = {}
    for flag in ((), ("--no-posterior",)):
        out = tmp_path / f"out{len(flag)}"
        assert main([str(tiny), *args, *flag, "--scheduler", scheduler, "--quiet", "--out", str(out)]) == 0
        results[flag] = read(out)
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        said = manifest.get("uncertainty") or manifest["options"]["uncertainty"]  # a comparison's is among its options
        assert said.startswith("seed + responses" if flag else "seed + parameters + responses"), said
    drawn, point = results[()], results[("--no-posterior",)]
    assert drawn.shape == point.shape
    assert not np.allclose(drawn, point), f"--no-posterior left {study} unchanged"


def test_both_sides_of_a_pair_draw_the_same_parameters(files):
    """A pair's two scenarios get one draw per member seed, so their difference is the policy's, not the parameters'."""
    tiny, more = (scenario.load(f) for f in files)
    fitted = read_calibration(SHIPPED_CALIBRATION)["fitted"]
    draws = []
    for seed in member_seeds(1, 8):
        a, b = MemberSpec().run_spec(tiny, seed), MemberSpec().run_spec(more, seed)
        assert {k: a.params[k] for k in fitted} == {k: b.params[k] for k in fitted}
        draws.append(tuple(a.params[k] for k in fitted))
    assert len(set(draws)) > 1  # the members do draw different sets


@pytest.mark.parametrize("flag", ["--no-posterior", "--freeze-responses"])
def test_a_draw_flag_where_nothing_draws_is_one_error_line(files, tmp_path, flag):
    tiny, more = files
    for args in ((tiny,), (tiny, "--compare", more)):
        run = cli(*args, flag, "--out", tmp_path / "never")
        assert run.returncode == 2 and run.stderr.startswith(f"error: arguments: {flag}:"), run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "never").exists()


def _triangular_moments(lo: float, mode: float, hi: float) -> tuple[float, float]:
    """Mean and variance of the triangular distribution on [lo, hi] with its mode at ``mode``."""
    return (lo + mode + hi) / 3, (lo**2 + mode**2 + hi**2 - lo * mode - lo * hi - mode * hi) / 18


def test_response_draws_reproduce_from_the_seed_differ_across_members_and_follow_the_evidence_range():
    """Triangular over each evidence range with the central value as mode: every draw inside, the moments right."""
    seeds = member_seeds(1, 2000)
    drawn = [draw_responses(s) for s in seeds]
    assert drawn[:20] == [draw_responses(s) for s in seeds[:20]]  # seeded
    for f in response_fields():
        values = np.array([d[f.name] for d in drawn])
        lo, hi = f.metadata["evidence"]
        assert len(set(values[:20])) == 20 and lo <= values.min() and values.max() <= hi, f.name
        mean, variance = _triangular_moments(lo, f.default, hi)
        assert abs(values.mean() - mean) < 4 * np.sqrt(variance / len(values)), (f.name, values.mean(), mean)
        assert abs(values.var() / variance - 1) < 0.12, (f.name, values.var(), variance)
    other = {f.name: [d[f.name] for d in drawn[:50]] for f in response_fields()}
    names = list(other)
    for a, b in zip(names, names[1:]):  # each parameter has its own stream: no two move together
        assert abs(np.corrcoef(other[a], other[b])[0, 1]) < 0.5, (a, b)


def test_response_draws_are_paired_frozen_at_the_centre_and_never_over_a_scenarios_own_value(files):
    tiny, more = (scenario.load(f) for f in files)
    names = [f.name for f in response_fields()]
    for seed in member_seeds(3, 6):
        a, b = MemberSpec().run_spec(tiny, seed), MemberSpec().run_spec(more, seed)
        assert {k: a.params[k] for k in names} == {k: b.params[k] for k in names} == draw_responses(seed)
        frozen = MemberSpec(responses=False).run_spec(tiny, seed)
        assert not set(names) & set(frozen.params)
        used = frozen.parameters()
        assert all(getattr(used, f.name) == f.default for f in response_fields())  # the central values
    first = response_fields()[0]
    mine = tiny.model_copy(update={"params": {**tiny.params, first.name: first.metadata["evidence"][1]}})
    for seed in member_seeds(4, 6):
        run = MemberSpec().run_spec(mine, seed).params
        assert run[first.name] == first.metadata["evidence"][1]
        assert all(run[f.name] == draw_responses(seed)[f.name] for f in response_fields()[1:])


def _fund_files(folder: Path, tiny: Path) -> tuple[Path, Path]:
    """No levers, and the same city with a vision fund so large that its response dwarfs the seed noise."""
    none, fund = folder / "none.yaml", folder / "fund.yaml"
    none.write_text(yaml.safe_dump({"extends": str(tiny), "name": "none", "levers": []}), encoding="utf-8")
    fund.write_text(yaml.safe_dump({"extends": str(none), "name": "fund", "levers": [
        {"kind": "vision_fund", "total_cny": 1.0e12, "zones": [], "credit_ratio": 10.0, "credit_additionality": 1.0}]}),
        encoding="utf-8")
    return none, fund


def test_response_draws_widen_the_ensembles_and_the_comparisons_intervals(files, scheduler, tmp_path):
    """The same 6 members (posterior off, so only the responses differ): drawn responses give a wider 2024 core-revenue
    interval than frozen ones, for the ensemble's p5-p95 and for the paired comparison's 90% interval of B - A."""
    none, fund = _fund_files(tmp_path, files[0])
    widths: dict[str, dict[bool, float]] = {"ensemble": {}, "compare": {}}
    for frozen in (False, True):
        flags = ["--ensemble", "6", "--no-posterior", "--scheduler", scheduler, "--quiet", *(["--freeze-responses"] * frozen)]
        out = tmp_path / f"ensemble{frozen}"
        assert main([str(fund), *flags, "--out", str(out)]) == 0
        table = pd.read_csv(out / "ensemble_metrics.csv", keep_default_na=False)
        row = table[(table["metric"] == "revenue_cny") & (table["year"] == 2024) & (table["zone"] == "")
                    & (table["district"] == "") & (table["track"] == "")].iloc[0]
        widths["ensemble"][frozen] = row["p95"] - row["p5"]
        out = tmp_path / f"compare{frozen}"
        assert main([str(none), "--compare", str(fund), *flags, "--out", str(out)]) == 0
        table = pd.read_csv(out / "comparison.csv", keep_default_na=False, encoding="utf-8-sig")
        row = table[(table["level"] == "city") & (table["metric"] == "revenue_cny") & (table["year"] == 2024)].iloc[0]
        widths["compare"][frozen] = row["ci90_high"] - row["ci90_low"]
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        said = manifest.get("uncertainty") or manifest["options"]["uncertainty"]
        assert said.startswith("seed only" if frozen else "seed + responses"), said
    for study, width in widths.items():
        assert width[False] > 1.3 * width[True] > 0, (study, width)
