"""One member specification for every study: ``--no-posterior`` changes ``--ensemble``, ``--compare --ensemble``,
``--attribute`` and ``--seek`` alike, pairs share their draw, and the flag is an error where no member draws.

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
from twin.studies.seeds import MemberSpec, member_seeds

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
        assert said.startswith("seed only" if flag else "seed + parameters"), said
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


def test_a_draw_flag_where_nothing_draws_is_one_error_line(files, tmp_path):
    tiny, more = files
    for args in ((tiny,), (tiny, "--compare", more)):
        run = cli(*args, "--no-posterior", "--out", tmp_path / "never")
        assert run.returncode == 2 and run.stderr.startswith("error: arguments: --no-posterior:"), run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "never").exists()
