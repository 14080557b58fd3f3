"""The 2027 targets judged on full-city estimates: the anchors as simulated + the other firms / scale.

The anchors are simulated at their real size at any scale, so neither a scaled run's raw figure nor a target
scaled by params.scale is comparable with the city (the anchors alone met the scaled target)."""

from __future__ import annotations

import pytest

from twin.engine.targets import TARGETS_2027, full_scale
from twin.outputs.manifest import target_status
from twin.outputs.maps.payload import build
from twin.outputs.summary import run_summary
from twin.policy import scenario
from twin.simulation.run import simulate

FIGURES = {"revenue_cny": 110.0, "anchor_revenue_cny": 100.0, "total_scale_cny": 275.0, "leaders_100bn": 3.0, "anchor_leaders_100bn": 2.0}


def test_the_estimate_adds_the_other_firms_over_scale_to_the_anchors():
    estimate = full_scale(FIGURES, 0.1)
    assert estimate["revenue_cny"] == pytest.approx(100 + 10 / 0.1)  # 200, not 110 / 0.1 = 1100 nor 110
    assert estimate["leaders_100bn"] == pytest.approx(2 + 1 / 0.1)  # 12
    assert estimate["total_scale_cny"] == pytest.approx(200 * 2.5)  # the run's own ratio to core revenue
    assert set(estimate) == set(TARGETS_2027)
    no_anchors = full_scale(FIGURES | {"anchor_revenue_cny": 0.0, "anchor_leaders_100bn": 0.0}, 0.1)
    assert no_anchors["revenue_cny"] == pytest.approx(1100)


def test_at_full_scale_the_figures_pass_through_bit_for_bit():
    figures = FIGURES | {"revenue_cny": 0.9, "anchor_revenue_cny": 0.2}  # 0.2 + (0.9 - 0.2) is 0.8999999999999999
    assert full_scale(figures, 1.0) == {m: figures[m] for m in TARGETS_2027}
    assert full_scale(figures, 1.0)["revenue_cny"] == 0.9


@pytest.fixture(scope="module")
def small(stack):
    """The baseline 2023-2024 at scale 0.01 with its anchors, and no births (so the other firms stay few)."""
    spec = scenario.load(scenario.BASELINE)
    spec = spec.model_copy(update={"params": {"scale": 0.01, "birth_rate": 0.0}, "years": spec.years.model_copy(update={"end": 2024})})
    return simulate(spec, seed=1, stack=stack, firm_years=())


def test_a_scaled_run_with_anchors_is_not_met_where_scaled_targets_said_met(small):
    figures = small.year(2024).figures
    status = target_status(small)["revenue_cny"]
    anchors = figures["anchor_revenue_cny"]
    assert 0 < anchors < figures["revenue_cny"]
    assert status["value"] == pytest.approx(anchors + (figures["revenue_cny"] - anchors) / 0.01)
    assert status["simulated"] == figures["revenue_cny"] >= 0.01 * 4e11  # the old rule: met
    assert status["target"] == 4e11 and not status["met"] and status["value"] < 4e11
    core = next(line for line in run_summary(small, "en").splitlines() if "core revenue, target" in line)
    assert "estimate CNY" in core and "of CNY 400.0 bn" in core and core.rstrip().split(" (")[0].endswith("not met")
    assert "anchors + other firms / 0.01" in run_summary(small, "en")


def test_the_map_of_a_scaled_run_knows_its_scale_and_the_absolute_targets(small):
    data = build(small)
    assert data["scale"] == 0.01 and data["targets"] == {m: t for m, (t, _) in TARGETS_2027.items()}
