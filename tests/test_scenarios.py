"""Scenario files: the shipped ones validate, inheritance resolves, and the schema is printable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from twin.policy import scenario
from twin.policy.levers import KINDS, ComputeVouchers, VisionFund

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_the_eight_scenarios_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert {"baseline", "no_policy", "vouchers_250m", "fund_core_focus", "fund_dispersed", "ai_parks", "talent_push", "trillion_push"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_validates(path):
    spec = scenario.load(path)
    assert spec.name == path.stem
    assert spec.title.zh and spec.title.en and spec.description


def test_extends_chains_resolve_and_overrides_win():
    dispersed = scenario.load(ROOT / "scenarios" / "fund_dispersed.yaml")  # -> fund_core_focus -> baseline
    assert dispersed.years.end == 2027 and dispersed.seed == 1  # from baseline
    fund = next(lever for lever in dispersed.levers if isinstance(lever, VisionFund))
    assert fund.zones == [] and fund.appeal == 0.8  # its own value, over fund_core_focus's [window, core]
    assert scenario.load(ROOT / "scenarios" / "no_policy.yaml").levers == []


def test_nested_values_merge_key_by_key(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: parent\nyears: {start: 2023, end: 2030}\nparams: {growth_mu: 0.05, scale: 0.5}\n")
    (tmp_path / "child.yaml").write_text("extends: parent\nname: child\nyears: {end: 2026}\nparams: {scale: 0.1}\n")
    child = scenario.load(tmp_path / "child.yaml")
    assert (child.years.start, child.years.end) == (2023, 2026)
    assert child.params == {"growth_mu": 0.05, "scale": 0.1}


def test_lever_defaults_carry_the_published_figures():
    vouchers = ComputeVouchers(kind="compute_vouchers")
    assert vouchers.budget_cny_per_year == 50e6 and vouchers.max_share == 0.3 and vouchers.max_per_firm_cny == 8e6
    assert VisionFund(kind="vision_fund").total_cny == 3e9
    for kind in KINDS:
        assert scenario.Scenario.model_validate({"name": "x", "levers": [{"kind": kind}]}).levers[0].kind == kind


def test_schema_is_printed_as_json_schema():
    out = subprocess.run([sys.executable, "run_scenario.py", "--schema"], cwd=ROOT, capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    assert {"name", "extends", "years", "levers", "params", "layers", "grid"} <= set(schema["properties"])
    kinds = {d["properties"]["kind"]["const"] for d in schema["$defs"].values() if "kind" in d.get("properties", {})}
    assert kinds == set(KINDS)
