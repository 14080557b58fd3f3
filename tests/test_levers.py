"""The levers move the model the way their docs say."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from twin.engine.effects import Effects
from twin.engine.params import INTENSITY, MONTH, TIERS, TRACK_IDS
from twin.model import VisionValleyModel
from twin.policy import scenario
from twin.policy.hook import lever_labels
from twin.policy.lever_base import grant_additionality
from twin.policy.levers import ComputeBuildout, ComputeSite, ComputeVouchers, ModelSubsidies, VisionFund
from twin.policy.levers_place import Park, Parks, SmartOM, Talent
from twin.simulation.run import simulate

CITY = {"scale": 0.02, "anchors": 0}


def _spec(name: str, **update) -> scenario.Scenario:
    spec = scenario.load(scenario.SCENARIOS / f"{name}.yaml")
    return spec.model_copy(update={"params": CITY, **update})


def _spend(model: VisionValleyModel) -> pd.Series:
    """spend_cny by (year, lever) from the model's metrics table."""
    metrics = model.datacollector.get_table_dataframe("metrics")
    return metrics[(metrics.level == "lever") & (metrics.metric == "spend_cny")].set_index(["year", "lever"])["value"]


def _log_revenue(model: VisionValleyModel) -> pd.Series:
    """Log revenue of the live firms by stable id."""
    firms = model.state.firms
    return pd.Series(np.log(firms.revenue[firms.alive]), index=firms.uid[firms.alive])


def test_vouchers_lift_eligible_firms_and_the_lift_fades(stack):
    """An ample voucher budget paid in 2024 only lifts eligible firms, not the others, and the lift fades once it stops.

    Compared on the base-year firms alive in both runs, so births and exits do not blur the lift. The
    additional share of the vouchers enters the policy stock, which decays with funding_half_life_years
    (UK Growth Vouchers: a turnover gain lasting about a year, docs/sources.md#s-ev-vouchers-rct): by the end
    of 2026 the stock behind the lift has fallen by that half-life, where a permanent growth-rate shift would
    keep what it gave. (The revenue gap itself fades more slowly: bigger firms hire, and their density level
    and survival carry part of the lift on.)
    """
    years = scenario.Years(start=2023, end=2026)
    lever = ComputeVouchers(kind="compute_vouchers", budget_cny_per_year=5e10, start_year=2024, end_year=2024)
    plain = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack)
    paid = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack, levers=[lever])
    eligible = set(plain.state.firms.uid[lever.targets(plain)])
    lift = {}
    for month in range(1, 49):
        plain.step()
        paid.step()
        if month in (24, 48):
            gap = (_log_revenue(paid) - _log_revenue(plain)).dropna()
            targeted = np.array([uid in eligible for uid in gap.index])
            lift[month] = (gap[targeted].mean(), gap[~targeted].mean(), paid.state.firms.policy_stock[paid.state.firms.alive].sum())
    assert _spend(paid).sum() > 0
    (at_end, others, stock), (_, _, later) = lift[24], lift[48]
    assert at_end > 0.002 and at_end > others + 0.002, lift
    assert 0 < later < 0.5 ** (2 / paid.params.funding_half_life_years) * stock * 1.05, lift


def test_targets_are_the_live_firms_of_the_named_zones_districts_tracks_and_tiers(stack):
    """Lever.targets against its definition written out with np.isin, with some firms moved outside every zone."""
    model = VisionValleyModel(_spec("no_policy"), seed=1, stack=stack)
    geo, firms = model.geo, model.state.firms
    firms.cell[::7] = np.flatnonzero(geo.zone < 0)[: len(firms.cell[::7])]  # outside every zone: code -1
    firms.alive[::5] = False
    zone, district, tier = geo.zone[firms.cell], geo.district[firms.cell], model.params.tier(firms.revenue)
    cases = [
        {},
        {"zones": [geo.zone_ids[0]], "tiers": ["sme", "leader"]},
        {"districts": list(geo.district_names[:2]), "tracks": ["security", "foundation"]},
    ]
    for case in cases:
        lever = ComputeVouchers(kind="compute_vouchers", **{"tracks": [], "tiers": [], **case})
        expected = firms.alive.copy()
        for codes, key, known in ((zone, "zones", geo.zone_ids), (district, "districts", geo.district_names),
                                  (firms.track, "tracks", TRACK_IDS), (tier, "tiers", TIERS)):
            if case.get(key):
                expected &= np.isin(codes, [known.index(name) for name in case[key]])
        assert (lever.targets(model) == expected).all(), case
    assert (ComputeVouchers(kind="compute_vouchers", tracks=[], tiers=[]).targets(model) == firms.alive).all()  # -1 included


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
    built.run_model()
    plain.run_model()
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


def test_talent_lever_brings_more_talent_and_books_its_cost(stack):
    years = scenario.Years(start=2023, end=2025)
    counts = []
    for levers in ([], [Talent(kind="talent", cost_cny_per_year=1.2e8)]):
        spec = _spec("no_policy", years=years, params={**CITY, "talent_inflow_gain": 1.0, "talent_retention_gain": 1.0})
        model = VisionValleyModel(spec, seed=4, stack=stack, levers=levers)
        model.run_model()
        counts.append(model.figures["talent"])
    assert counts[1] > counts[0] * 1.02
    spend = _spend(model)
    assert spend[2024, "talent#0"] == pytest.approx(1.2e8 * CITY["scale"])


def test_levers_act_only_in_their_years(stack):
    years = scenario.Years(start=2023, end=2024)
    late = ComputeVouchers(kind="compute_vouchers", budget_cny_per_year=250e6, start_year=2030)
    model = VisionValleyModel(_spec("no_policy", years=years), seed=1, stack=stack, levers=[late])
    model.run_model()
    assert model.state.firms.funding.sum() == 0
    assert _spend(model).sum() == 0


def test_every_lever_reports_its_spend_each_year(stack):
    """metrics.csv carries spend_cny for each lever of the baseline in each simulated year; vouchers spend their budget."""
    years = scenario.Years(start=2023, end=2025)
    spec = _spec("baseline", years=years)
    model = VisionValleyModel(spec, seed=2, stack=stack, levers=spec.levers)
    model.run_model()
    spend = _spend(model)
    labels = lever_labels(spec.levers)
    assert sorted(spend.index) == sorted((year, label) for year in (2024, 2025) for label in labels)
    vouchers = spec.levers[0].budget_cny_per_year * CITY["scale"]
    assert spend[2024, "compute_vouchers#0"] == pytest.approx(vouchers)  # claims exceed ¥50 M: the budget binds
    pflops = {site.year: site.pflops for site in spec.levers[3].sites}
    assert spend[2025, "compute_buildout#0"] == pytest.approx(pflops[2025] * spec.levers[3].cost_cny_per_pflops * CITY["scale"])
    assert (spend >= 0).all()


def test_fund_carries_tranches_before_the_run_and_repays_its_credit():
    """The 2023 tranche comes in 2024 (the first simulated year), the total is deployed in full, and loans run off."""
    fund = VisionFund(kind="vision_fund", start_year=2023, deploy_years=5, total_cny=3e9)
    tranches = {year: fund.tranche(year, first=2024) for year in range(2020, 2031)}
    assert tranches[2023] == 0 and tranches[2024] == pytest.approx(2 * 6e8) and tranches[2025] == pytest.approx(6e8)
    assert sum(tranches.values()) == pytest.approx(3e9)
    assert fund.outstanding(2025.0, first=2024) == pytest.approx(1.2e9 * (1 - np.mean(np.arange(12) / 12 + 1 / 12) / 3), rel=1e-9)
    assert fund.outstanding(2028.0 + fund.credit_years, first=2024) == 0.0


def test_funding_lifts_revenue_by_a_stock_that_fades(stack):
    """A one-off grant lifts the firm's revenue by funding_return x a stock that halves every funding_half_life_years."""

    class Grant:
        """Gives the largest firm (which will not close in two years) ¥50 M in the first month."""

        def __init__(self) -> None:
            self.uid = -1

        def apply(self, model, effects: Effects) -> None:
            firms = model.state.firms
            if self.uid < 0:
                row = int(np.argmax(np.where(firms.alive, firms.revenue, 0.0)))
                self.uid = int(firms.uid[row])
                effects.funding[row] += 5e7

    years = scenario.Years(start=2023, end=2025)
    grant = Grant()
    funded = VisionValleyModel(_spec("no_policy", years=years), seed=3, stack=stack, levers=[grant])
    plain = VisionValleyModel(_spec("no_policy", years=years), seed=3, stack=stack)
    funded.run_model()
    plain.run_model()
    p = funded.params
    row = {m: int(np.flatnonzero(m.state.firms.uid == grant.uid)[0]) for m in (funded, plain)}
    stock = funded.state.firms.policy_stock[row[funded]]
    assert stock == pytest.approx(5e7 * 0.5 ** ((2.0 - 1 / 12) / p.funding_half_life_years), rel=1e-9)  # 23 months of decay after the grant month
    gap = funded.state.firms.revenue[row[funded]] - plain.state.firms.revenue[row[plain]]
    lift = p.funding_return * stock
    # The gap tracks the faded lift (the bigger firm also meets more labour shortage and size drag), well below the undecayed r x 50 M.
    assert 0.5 * lift < gap < 1.2 * lift < 0.8 * p.funding_return * 5e7


# --- each lever's channel by direction and value, on one small city ---------------------------------------------------


def _first_month(stack, levers: list, **params) -> tuple[VisionValleyModel, int]:
    """A small city after its first month under ``levers``, and how many talent were employed before it."""
    spec = _spec("no_policy", years=scenario.Years(start=2023, end=2024), params={**CITY, **params})
    model = VisionValleyModel(spec, seed=4, stack=stack, levers=levers)
    employed = int((model.state.talent.alive & (model.state.talent.firm >= 0)).sum())
    model.step()
    return model, employed


def test_retention_divides_the_rate_at_which_employed_talent_leave(stack):
    """Retention alone (inflow 1): employed talent leave at 1 - exp(-rate / 12 / retention) a month, so three times better
    retention means about a third of the leavers (seekers do not leave here, so only the employed rule counts)."""
    rate = 0.6
    out = {}
    for retention in (1.0, 3.0):
        lever = Talent(kind="talent", cost_cny_per_year=0)
        model, employed = _first_month(stack, [lever], leave_rate_employed=rate, leave_rate_seeking=0.0,
                                       talent_inflow_gain=0.0, talent_retention_gain=retention - 1.0)
        expected = employed * -np.expm1(-rate / 12 / retention)
        out[retention] = model.state.log.talent_out
        assert abs(out[retention] - expected) < 5 * np.sqrt(expected), (retention, out[retention], expected)
    assert out[3.0] < 0.5 * out[1.0]


def test_inflow_multiplies_arrivals_and_leaves_leaving_alone(stack):
    """Inflow alone (retention 1): the month's arrivals are the Poisson count of the multiplied mean, leavers unchanged."""
    runs = {k: _first_month(stack, [Talent(kind="talent", cost_cny_per_year=0)], talent_inflow_gain=k - 1.0, talent_retention_gain=0.0)[0]
            for k in (1.0, 3.0)}
    plain, more = runs[1.0].state.log, runs[3.0].state.log
    assert plain.talent_out == more.talent_out
    assert abs(more.talent_in - 3 * plain.talent_in) < 5 * np.sqrt(3 * plain.talent_in) and more.talent_in > 2 * plain.talent_in


@pytest.fixture(scope="module")
def city(stack) -> VisionValleyModel:
    """A small city at the start of its first simulated month, for levers applied by hand (tests restore what they change)."""
    return VisionValleyModel(_spec("no_policy", years=scenario.Years(start=2023, end=2024)), seed=2, stack=stack)


def _apply(lever, model: VisionValleyModel) -> Effects:
    effects = Effects.neutral(model.state.firms.n, len(model.geo.zone_ids))
    effects.lever = "x#0"
    lever.apply(model, effects)
    return effects


def test_vouchers_pay_the_capped_share_of_eligible_firms_compute_cost_through_the_price(city):
    """Each eligible firm is paid min(max_share x cost, max_per_firm) a year, a twelfth a month, none elsewhere; a binding
    budget scales every claim alike; voucher_additionality of what is paid is the firm's funding, all of it is spend."""
    firms, p = city.state.firms, city.params
    cost = firms.revenue * p.compute_cost_share * INTENSITY[firms.track] * city.state.compute_price
    ample = ComputeVouchers(kind="compute_vouchers", budget_cny_per_year=1e11, max_share=0.3, max_per_firm_cny=2e5)
    eligible = ample.targets(city)
    assert 0 < eligible.sum() < firms.alive.sum()
    claim = np.where(eligible, np.minimum(0.3 * cost, 2e5), 0.0)
    effects = _apply(ample, city)
    np.testing.assert_allclose(effects.funding, claim / 12 * p.voucher_additionality, rtol=1e-12)
    assert (claim[eligible] < 2e5).any() and (claim[eligible] == 2e5).any()  # the share binds on some firms, the per-firm cap on others
    assert effects.spend["x#0"] == pytest.approx(claim.sum() / 12)
    budget = 0.25 * claim.sum() / p.scale  # a quarter of the claims: every firm gets a quarter of its claim
    effects = _apply(ComputeVouchers(kind="compute_vouchers", budget_cny_per_year=budget, max_share=0.3, max_per_firm_cny=2e5), city)
    np.testing.assert_allclose(effects.funding, 0.25 * claim / 12 * p.voucher_additionality, rtol=1e-9)


def test_the_fund_draws_only_its_zones_and_invests_only_in_its_targets(city):
    fund = VisionFund(kind="vision_fund", zones=["core"], appeal=0.7, ticket_cny=2e5)
    effects = _apply(fund, city)
    expected = np.zeros(len(city.geo.zone_ids))
    expected[city.geo.zone_ids.index("core")] = 0.7
    np.testing.assert_array_equal(effects.zone_appeal, expected)
    funded = effects.funding > 0
    assert funded.any() and not (funded & ~fund.targets(city)).any()
    p = city.params
    per_ticket = 2e5 * (1 + fund.credit_ratio * fund.credit_additionality) * p.equity_additionality  # only the additional share funds activity
    per_ticket = per_ticket * np.where(city.state.firms.revenue[funded] < p.leader_threshold_cny, p.grant_additionality_small, p.grant_additionality_large)
    np.testing.assert_allclose(effects.funding[funded] / per_ticket, np.round(effects.funding[funded] / per_ticket), rtol=1e-12)


def test_smart_om_touches_only_its_winners(city):
    """Contracts go to reached firms only, each winner gains the contract value in sales, and only young winners keep a
    lasting share; nobody else gets anything and no growth rate moves."""
    firms, p = city.state.firms, city.params
    lever = SmartOM(kind="smart_om", tracks=["medical"], contracts_per_year=4000, contract_cny=1e5, min_revenue_cny=0)
    effects = _apply(lever, city)
    won = effects.sales > 0
    assert won.sum() >= 2 and not (won & ~lever.targets(city)).any() and not effects.growth.any()
    np.testing.assert_allclose(effects.sales[won], 1e5)
    young = won & (city.year - firms.born < p.young_firm_years)
    np.testing.assert_allclose(effects.lasting, np.where(young, p.procurement_lasting_share * 1e5, 0.0))
    assert effects.spend["x#0"] == pytest.approx(won.sum() * 1e5)


def test_the_large_model_subsidy_goes_to_the_largest_model_builder(city):
    lever = ModelSubsidies(kind="model_subsidies", specialised_per_year=0)
    firms = city.state.firms
    builders = np.flatnonzero(firms.alive & np.isin(firms.track, [TRACK_IDS.index(t) for t in lever.tracks]))
    leader = builders[np.argmax(firms.revenue[builders])]
    effects = _apply(lever, city)
    assert np.flatnonzero(effects.funding).tolist() == [leader]
    p = city.params
    share = p.grant_additionality_small if firms.revenue[leader] < p.leader_threshold_cny else p.grant_additionality_large
    assert effects.funding[leader] == pytest.approx(lever.large_model_cny * p.scale * share)


def test_a_park_adds_its_floor_space_within_its_radius_of_its_anchor(city):
    """Every cell that gains floor space lies within radius_m of the anchor (distances from the grid's rows and columns), and
    the cells within the radius that are in the city all gain."""
    geo, state = city.geo, city.state
    saved = state.capacity_m2.copy(), state.parks.n
    try:
        _apply(Parks(kind="parks", start_year=2024, parks=[Park(anchor="iot_town_binjiang", radius_m=1500.0, floor_m2=1e6)]), city)
        gained = np.flatnonzero(state.capacity_m2 > saved[0])
    finally:
        state.capacity_m2[:] = saved[0]
        state.parks.n = saved[1]
    row, col = np.divmod(np.arange(geo.size), geo.shape[1])
    centre = geo.anchor_cells["iot_town_binjiang"]
    metres = np.hypot(row - row[centre], col - col[centre]) * geo.cell_m
    inside = np.flatnonzero((metres <= 1500.0) & (geo.district >= 0))
    assert gained.tolist() == inside.tolist() and len(inside) > 50


def test_a_grant_is_more_additional_for_a_small_firm_than_for_a_mature_leader(city):
    """grant_additionality gives the small-firm share below the leader tier (or when young) and the large-firm one to a
    mature leader, and the small one is the larger (docs/sources.md#s-ev-grants-rdd)."""
    firms, p = city.state.firms, city.params
    live = np.flatnonzero(firms.alive)
    old = city.year - firms.born[live] >= p.young_firm_years
    small, large = live[old][:5], live[old][5:10]
    assert len(large) == 5 and (firms.revenue[live[old][:10]] < p.leader_threshold_cny).all()
    saved = firms.revenue[large].copy()
    try:
        firms.revenue[large] = 2 * p.leader_threshold_cny  # mature leaders (this small city has none)
        share = grant_additionality(city, np.concatenate([small, large]))
    finally:
        firms.revenue[large] = saved
    np.testing.assert_allclose(share, [p.grant_additionality_small] * len(small) + [p.grant_additionality_large] * len(large))
    assert p.grant_additionality_small > p.grant_additionality_large


def test_a_park_lifts_firms_in_it_once_and_takes_part_of_the_gain_from_firms_elsewhere(city):
    """In its first month a park lifts reached firms within its radius by park_productivity_lift a year (a twelfth of the
    one-off level a month), lowers reached firms elsewhere pro rata, so the city-wide yuan net is (1 - displacement) of the
    gain; leaders and firms of other tracks are untouched."""
    firms, p, state = city.state.firms, city.params, city.state
    saved = state.capacity_m2.copy(), state.parks.n
    lever = Parks(kind="parks", start_year=2024, tracks=["security", "industrial"], parks=[Park(anchor="iot_town_binjiang", radius_m=3000.0)])
    try:
        effects = _apply(lever, city)
    finally:
        state.capacity_m2[:] = saved[0]
        state.parks.n = saved[1]
    reached = lever.targets(city)
    centre = city.geo.anchor_cells["iot_town_binjiang"]
    inside = city.geo.distance_km(np.full(firms.n, centre), firms.cell) * 1000 <= 3000.0
    assert (reached & inside).sum() > 0 and (reached & ~inside).sum() > 0
    np.testing.assert_allclose(effects.growth[reached & inside], p.park_productivity_lift)
    assert (effects.growth[reached & ~inside] < 0).all() and not effects.growth[~reached].any()
    gained = (effects.growth * firms.revenue)[reached & inside].sum()
    np.testing.assert_allclose((effects.growth * firms.revenue)[reached].sum(), (1 - p.park_displacement) * gained, rtol=1e-9)


def test_compute_buildout_lifts_only_its_adopters_and_nothing_without_the_response(city):
    """When a site opens, adopters among the reached firms gain compute_adoption_lift of log sales once (lift / MONTH for a
    month), nobody else gains, and with compute_adoption_lift 0 nobody does."""
    state, params = city.state, city.params
    lever = ComputeBuildout(kind="compute_buildout", sites=[ComputeSite(year=2024, pflops=3000)])
    saved = state.compute.n
    try:
        effects = _apply(lever, city)
        state.compute.n = saved
        city.params = dataclasses.replace(params, compute_adoption_lift=0.0)
        none = _apply(lever, city)
    finally:
        state.compute.n, city.params = saved, params
    adopted = effects.growth > 0
    assert 0 < adopted.sum() < lever.targets(city).sum() and not (adopted & ~lever.targets(city)).any()
    np.testing.assert_allclose(effects.growth[adopted] * MONTH, params.compute_adoption_lift)
    assert not none.growth.any()
