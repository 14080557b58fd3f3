"""The levers move the model the way their docs say."""

from __future__ import annotations

import numpy as np
import pytest

from twin.model import VisionValleyModel
from twin.policy import scenario
from twin.policy.levers import ComputeBuildout, ComputeVouchers, Parks, Talent
from twin.simulation.run import simulate

CITY = {"scale": 0.02, "anchors": 0}


def _spec(name: str, **update) -> scenario.Scenario:
    spec = scenario.load(scenario.SCENARIOS / f"{name}.yaml")
    return spec.model_copy(update={"params": CITY, **update})


def _mean_log_revenue(model: VisionValleyModel, eligible: bool) -> float:
    """Mean log revenue of the firms compute vouchers target (non-leaders in AI-intensive tracks), or of the rest."""
    lever = ComputeVouchers(kind="compute_vouchers")
    mask = lever.targets(model) if eligible else model.state.firms.alive & ~lever.targets(model)
    return float(np.log(model.state.firms.revenue[mask]).mean())


def test_vouchers_raise_ai_intensive_firms_growth(stack):
    """An ample voucher budget (every eligible firm gets the 30 % cap) lifts eligible firms, not the others."""
    years = scenario.Years(start=2023, end=2024)
    lift = {True: [], False: []}
    for seed in (1, 2, 3):
        plain = VisionValleyModel(_spec("no_policy", years=years), seed=seed, stack=stack)
        paid = VisionValleyModel(_spec("no_policy", years=years), seed=seed, stack=stack,
                                 levers=[ComputeVouchers(kind="compute_vouchers", budget_cny_per_year=5e10)])
        plain.run()
        paid.run()
        for eligible in lift:
            lift[eligible].append(_mean_log_revenue(paid, eligible) - _mean_log_revenue(plain, eligible))
        assert paid.state.firms.funding.sum() > 0
    assert np.mean(lift[True]) > 0.02, lift
    assert np.mean(lift[True]) > np.mean(lift[False]) + 0.02, lift


def test_core_focused_fund_shifts_firms_to_the_cores(stack):
    def core_share(name: str, seed: int) -> float:
        firms = simulate(_spec(name), seed, stack=stack).years[-1].firms
        return float(firms["zone"].isin(["window", "core"]).mean())

    for seed in (1, 2):
        assert core_share("fund_core_focus", seed) > core_share("fund_dispersed", seed) + 0.02


def test_no_policy_grows_least(stack):
    names = ["no_policy", "baseline", "vouchers_250m", "fund_core_focus", "fund_dispersed", "ai_parks", "talent_push", "trillion_push"]
    final = {n: np.mean([simulate(_spec(n), s, stack=stack).years[-1].figures["revenue_cny"] for s in (1, 2, 3)]) for n in names}
    assert min(final, key=final.get) == "no_policy", final


def test_compute_buildout_adds_supply_and_lowers_the_price(stack):
    years = scenario.Years(start=2023, end=2025)
    lever = ComputeBuildout(kind="compute_buildout")
    built = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack, levers=[lever])
    plain = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack)
    built.run()
    plain.run()
    assert built.figures["compute_pflops"] == plain.figures["compute_pflops"] + 2000
    assert built.state.compute_price < plain.state.compute_price


def test_parks_add_floor_space_from_their_year(stack):
    years = scenario.Years(start=2023, end=2025)
    lever = Parks(kind="parks", start_year=2025)
    model = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack, levers=[lever])
    before = model.state.capacity_m2.sum()
    for _ in range(12):  # 2024
        model.step()
    assert model.state.capacity_m2.sum() == pytest.approx(before)
    model.step()  # January 2025: the parks open
    added = sum(p.floor_m2 for p in lever.parks) * CITY["scale"]
    assert model.state.capacity_m2.sum() == pytest.approx(before + added)
    assert model.state.parks.count == 5


def test_talent_lever_brings_more_talent(stack):
    years = scenario.Years(start=2023, end=2025)
    counts = []
    for levers in ([], [Talent(kind="talent", inflow_multiplier=2.0, retention_multiplier=2.0)]):
        model = VisionValleyModel(_spec("no_policy", years=years), seed=4, stack=stack, levers=levers)
        model.run()
        counts.append(model.figures["talent"])
    assert counts[1] > counts[0] * 1.02


def test_levers_act_only_in_their_years(stack):
    years = scenario.Years(start=2023, end=2024)
    late = ComputeVouchers(kind="compute_vouchers", budget_cny_per_year=250e6, start_year=2030)
    model = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack, levers=[late])
    model.run()
    assert model.state.firms.funding.sum() == 0
