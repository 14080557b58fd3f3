"""A manifest that reproduces its run: explicit calibration and data inputs, hashed; ``--from-manifest`` writes the same bytes.

Runs are a tiny city (scale 0.003, no anchor firms, 2023-2024) through the real command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from layers import InputError
from twin.engine.params import SHIPPED_CALIBRATION, Params, read_calibration
from twin.policy import scenario

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
OUTPUTS = ("metrics.csv", "firms.parquet", "density.tif", "map.html")


def cli(*args, module: tuple[str, ...] = ("run_scenario.py",)) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *module, *map(str, args)], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    """A folder with its own calibration (a copy of the shipped one) and a child extending a parent scenario."""
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "calibration.json").write_bytes(SHIPPED_CALIBRATION.read_bytes())
    (folder / "parent.yaml").write_text(yaml.safe_dump({
        "extends": str(scenario.BASELINE), "name": "parent", "calibration": "calibration.json",
        "years": {"start": 2023, "end": 2024}, "params": {"scale": 0.003, "anchors": 0}}), encoding="utf-8")
    (folder / "child.yaml").write_text(yaml.safe_dump({"extends": "parent.yaml", "name": "child"}), encoding="utf-8")
    return folder


def _run(case: Path, out: Path) -> dict:
    run = cli(case / "child.yaml", "--quiet", "--out", out)
    assert run.returncode == 0, run.stderr
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_from_manifest_writes_the_same_bytes(case, tmp_path):
    manifest = _run(case, tmp_path / "first")
    record = manifest["runs"][0]
    assert record["params"] == {**record["params"], **read_calibration(case / "calibration.json")["fitted"], "scale": 0.003}
    assert record["input_files"]["calibration"] == str(case / "calibration.json")
    assert record["input_files"]["scenario_parent_1"] == str(case / "parent.yaml")  # the parent, not only the child
    assert {"anchor_firms", "anchor_revenue_series", "compute_centres", "districts", "land"} <= set(record["inputs_sha256"])
    assert set(manifest["git"]) == {"dirty", "diff_sha256"} and manifest["versions"]["numpy"]
    (case / "child.yaml").rename(case / "moved.yaml")  # the resolved scenario is in the manifest: its files are not needed
    try:
        again = cli("--from-manifest", tmp_path / "first" / "manifest.json", "--quiet", "--out", tmp_path / "again")
    finally:
        (case / "moved.yaml").rename(case / "child.yaml")
    assert again.returncode == 0, again.stderr
    for name in OUTPUTS:
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "first" / name).read_bytes(), name


def test_changing_the_calibration_changes_the_manifest_and_stops_a_rerun(case, tmp_path):
    before = _run(case, tmp_path / "before")
    original = (case / "calibration.json").read_text(encoding="utf-8")
    record = json.loads(original)
    record["fitted"]["growth_mu"] = round(record["fitted"]["growth_mu"] + 0.05, 5)
    (case / "calibration.json").write_text(json.dumps(record), encoding="utf-8")
    try:
        after = _run(case, tmp_path / "after")
        refused = cli("--from-manifest", tmp_path / "before" / "manifest.json", "--out", tmp_path / "never")
    finally:
        (case / "calibration.json").write_text(original, encoding="utf-8")
    old, new = before["runs"][0], after["runs"][0]
    assert old["inputs_sha256"]["calibration"] != new["inputs_sha256"]["calibration"]
    assert new["params"]["growth_mu"] == pytest.approx(old["params"]["growth_mu"] + 0.05)
    assert (tmp_path / "before" / "metrics.csv").read_bytes() != (tmp_path / "after" / "metrics.csv").read_bytes()
    assert refused.returncode == 2 and not (tmp_path / "never").exists()
    assert refused.stderr.startswith("error: ") and "input_files.calibration" in refused.stderr and "changed" in refused.stderr


def test_parameters_come_from_the_calibration_file_passed_in(tmp_path):
    fitted = read_calibration()["fitted"]
    assert all(getattr(Params.from_calibration(), k) == v for k, v in fitted.items())
    mine = tmp_path / "fit.json"
    mine.write_text(json.dumps({"fitted": {"growth_mu": 0.011}, "posterior": []}), encoding="utf-8")
    assert Params.from_calibration(mine).growth_mu == 0.011
    assert Params.from_calibration(mine).growth_size_drag == Params().growth_size_drag  # not fitted there: the prior
    for bad in ('{"fitted": {"quit_rate": 0.1}}', "not json", '{"posterior": []}'):
        mine.write_text(bad, encoding="utf-8")
        with pytest.raises(InputError):
            Params.from_calibration(mine)


def test_calibrate_writes_only_where_it_is_told():
    run = cli("--trials", 1, module=("-m", "twin.studies.calibration"))
    assert run.returncode == 2 and "--out" in run.stderr
