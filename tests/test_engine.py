"""The vectorized engine: invariants every step, determinism, Mesa integration, the policy hook."""

from __future__ import annotations

import numpy as np
import pytest
from mesa.batchrunner import batch_run

from layers import InputError
from twin.engine.columns import Columns
from twin.engine.land import occupancy
from twin.engine.params import TRACK_IDS
from twin.model import VisionValleyModel
from twin.policy import scenario

SMALL = {"scale": 0.004, "anchors": 0}


@pytest.fixture(scope="module")
def two_years():
    """The baseline scenario cut to 2023-2025."""
    return scenario.load(scenario.BASELINE).model_copy(update={"years": scenario.Years(start=2023, end=2025)})


def _check_invariants(model: VisionValleyModel) -> None:
    state, geo = model.state, model.geo
    firms, talent = state.firms, state.talent
    cells = firms.cell[firms.alive]
    assert (geo.district[cells] >= 0).all(), "a firm outside the city"
    assert (state.capacity_m2[cells] > 0).all(), "a firm on a cell with no floor space"
    land = model.layers.land_raster.ravel()
    assert (land[cells] > 0).all(), "a firm on water or on land the land layer rules out"
    homes = talent.home[talent.alive]
    assert (geo.district[homes] >= 0).all() and (geo.housing[homes] > 0).all(), "a worker living outside the city"
    assert (land[homes] > 0).all(), "a worker living on water"
    np.testing.assert_array_equal(state.residents, np.bincount(homes, minlength=geo.size), "residents per cell out of step with the talent")
    assert (state.occupancy_m2 <= state.capacity_m2 + 1e-6).all(), "occupancy over capacity"
    np.testing.assert_allclose(state.occupancy_m2, occupancy(state, model.params, geo.size))
    employer = talent.firm[talent.alive]
    assert (firms.alive[employer[employer >= 0]]).all(), "a worker employed by a closed firm"
    counted = np.bincount(employer[employer >= 0], minlength=firms.n)
    np.testing.assert_array_equal(counted[firms.alive], firms.employees[firms.alive])
    for array in (firms.revenue, firms.compute, talent.wage, state.rent):
        assert np.isfinite(array).all(), "NaN or infinity in the state"
    assert (firms.revenue[firms.alive] > 0).all()


def test_invariants_hold_every_step(stack, two_years):
    model = VisionValleyModel(two_years, seed=3, stack=stack, **SMALL)
    _check_invariants(model)
    while model.running:
        firms_before, talent_before = model.state.firms.count, model.state.talent.count
        model.step()
        log = model.state.log
        assert model.state.firms.count - firms_before == log.firm_births - log.firm_exits
        assert model.state.talent.count - talent_before == log.talent_in - log.talent_out
        _check_invariants(model)
    assert model.steps == 24 and model.figures["year"] == model.year == 2026.0 and model.calendar_year == 2025


def test_same_seed_same_state_different_seed_differs(stack, two_years):
    runs = [VisionValleyModel(two_years, seed=s, stack=stack, **SMALL) for s in (7, 7, 8)]
    for model in runs:
        for _ in range(6):
            model.step()
    a, b, c = (m.state for m in runs)
    for name in a.firms.fields:
        np.testing.assert_array_equal(getattr(a.firms, name), getattr(b.firms, name))
    for name in a.talent.fields:
        np.testing.assert_array_equal(getattr(a.talent, name), getattr(b.talent, name))
    assert not np.array_equal(a.firms.revenue[: c.firms.n], c.firms.revenue[: a.firms.n])


def test_full_city_synthesis_matches_the_known_figures(stack):
    model = VisionValleyModel(seed=1, stack=stack)  # full scale, with anchors
    figures = model.figures
    assert figures["guishang_firms"] == 844  # docs/sources.md#s-guishang-844: 844 规上 firms, Aug 2023
    firms = model.state.firms
    hikvision = firms.revenue[(firms.anchor == 0)]
    assert hikvision.tolist() == [893.40e8]  # docs/sources.md#s-hik-2023 (the base year is the end of 2023)
    dahua = firms.revenue[firms.anchor == model.state.anchor_ids.index("dahua_hq")]
    assert dahua.tolist() == [322.18e8]  # docs/sources.md#s-dahua-2023
    assert "ezviz_hq" not in model.state.anchor_ids  # consolidated in 海康威视 (docs/sources.md#s-ezviz-2023)
    district = model.geo.district[firms.cell[firms.alive]]
    share = np.bincount(district, minlength=13) / firms.count
    target = 0.5 * model.geo.gdp / model.geo.gdp.sum() + 0.5 * model.geo.population / model.geo.population.sum()
    np.testing.assert_allclose(share, target, atol=0.01)
    assert 5e5 < figures["talent"] < 2e6 and 5e4 < figures["firms"] <= 1e5


def test_growth_to_100bn_is_possible(stack):
    """Nothing caps revenue: under strong growth 海康威视 (893.4 亿 in the base year) passes 1000 亿 and keeps going."""
    spec = scenario.load(scenario.BASELINE).model_copy(update={"years": scenario.Years(start=2023, end=2026)})
    model = VisionValleyModel(spec, seed=2, stack=stack, scale=0.002, growth_mu=0.5)
    model.run_model()
    assert model.figures["leaders_100bn"] >= 1
    assert model.state.firms.revenue.max() > 1.3e11


def test_batch_run_returns_rows(stack):
    rows = batch_run(
        VisionValleyModel,
        parameters={"scenario": str(scenario.BASELINE), "stack": stack, "scale": 0.002, "anchors": 0, "growth_mu": [0.0, 0.2]},
        iterations=2,
        max_steps=12,
        number_processes=1,
        data_collection_period=12,
        display_progress=False,
    )
    finals = [r for r in rows if r["Step"] == 12]
    assert len(finals) == 4
    assert {r["growth_mu"] for r in finals} == {0.0, 0.2}
    assert all(r["revenue_cny"] > 0 and r["year"] == 2025.0 for r in finals)


def test_policy_hook_reaches_the_engine(stack, two_years):
    """A lever that boosts one track's growth needs no engine edit, only apply()."""

    class BoostTrack:
        def __init__(self, track: str) -> None:
            self.track = TRACK_IDS.index(track)

        def apply(self, model, effects) -> None:
            firms = model.state.firms
            effects.growth[firms.track == self.track] += 0.5

    def track_revenue(model, track):
        firms = model.state.firms
        return firms.revenue[firms.alive & (firms.track == TRACK_IDS.index(track))].sum()

    plain = VisionValleyModel(two_years, seed=5, stack=stack, **SMALL)
    boosted = VisionValleyModel(two_years, seed=5, stack=stack, levers=[BoostTrack("medical")], **SMALL)
    plain.run_model()
    boosted.run_model()
    assert track_revenue(boosted, "medical") > 1.5 * track_revenue(plain, "medical")


def test_yearly_metrics_are_collected(stack, two_years):
    model = VisionValleyModel(two_years, seed=1, stack=stack, **SMALL)
    model.run_model()
    frame = model.datacollector.get_model_vars_dataframe()
    assert len(frame) == 25 and frame["year"].iloc[12] == 2025.0 and frame["year"].iloc[-1] == 2026.0 == model.year
    table = model.datacollector.get_table_dataframe("metrics")
    by_zone = table[(table.metric == "revenue_cny") & (table.zone != "") & (table.year == 2025)]
    assert set(by_zone.zone) == {"window", "core", "four", "wide"}
    total = table[(table.metric == "revenue_cny") & (table.zone == "") & (table.district == "") & (table.track == "") & (table.year == 2025)]
    assert by_zone.value.sum() == pytest.approx(total.value.iloc[0])


def test_unknown_or_out_of_range_parameters_are_input_errors(stack):
    with pytest.raises(InputError, match="params: growth_sigmaa: unknown parameter; did you mean growth_sigma"):
        VisionValleyModel(seed=1, stack=stack, growth_sigmaa=0.1)
    with pytest.raises(InputError, match=r"params: scale: -1 is out of range"):
        VisionValleyModel(seed=1, stack=stack, scale=-1)


def test_columns_grow_retire_and_compact():
    table = Columns({"x": np.float64, "ref": np.int32})
    table.append(x=np.arange(2000.0), ref=np.arange(2000))
    table.x *= 2
    assert table.x[10] == 20.0
    table.kill(np.arange(0, 2000, 2))
    assert table.needs_compaction()
    remap = table.compact()
    assert table.n == table.count == 1000
    np.testing.assert_array_equal(table.ref, np.arange(1, 2000, 2))
    assert remap[3] == 1 and remap[2] == -1


def test_micro_firms_do_not_run_away_at_the_edge_of_the_screened_ranges():
    """The size-variance law stops at sigma_floor_cny: with it unbounded, a firm shrunk to a few yuan drew a growth sd
    of ~10 a year, and at these screened values (seed 1, scale 0.02) one synthesized firm reached 6.9 万亿 by 2027."""
    model = VisionValleyModel(seed=1, scale=0.02, exit_rate=0.04, growth_sigma=0.35, sigma_size_elasticity=0.3)
    model.run_model()
    firms = model.state.firms
    synthesized = firms.alive & (firms.anchor < 0)
    assert firms.revenue[synthesized].max() < 1e10  # no synthesized firm becomes a 100 亿 firm in four years


@pytest.mark.parametrize("shape, sigma", [((9, 153, 231), 2.0), ((1, 153, 231), 8.0), ((2, 5, 7), 3.0), ((1, 40, 3), 0.7)])
def test_threaded_smoothing_has_scipys_bits(shape, sigma):
    """The fields' Gaussian is SciPy's gaussian_filter (constant, 3 sd) to the last bit, edges and narrow grids included."""
    from scipy import ndimage

    from twin.engine.smoothing import gaussian

    grids = np.random.default_rng(7).pareto(1.5, shape) * 1e8
    grids[grids < 2e7] = 0.0
    np.testing.assert_array_equal(gaussian(grids, sigma), ndimage.gaussian_filter(grids, (0, sigma, sigma), mode="constant", truncate=3.0))


def test_exits_skipping_the_hazard_below_the_ceiling_are_the_exits_of_the_full_formula(stack):
    """exit_firms computes a firm's hazard only when its uniform is under the smallest firm's probability; the closures
    are exactly those of the keyed uniform against every firm's full exit probability."""
    from twin.engine.firms import exit_firms, exit_hazard
    from twin.engine.params import MONTH

    model = VisionValleyModel(seed=4, stack=stack, scale=0.02, anchors=0, exit_rate=0.1)  # a rate that closes enough firms to compare, whatever the fit
    for _ in range(3):
        model.step()
    state, firms = model.state, model.state.firms
    rows = np.flatnonzero(firms.alive)
    draws = model.streams.month(99)
    p = -np.expm1(-exit_hazard(firms.revenue[rows], state.year - firms.born[rows], model.params) * MONTH)
    expected = rows[draws.uniform("exit", firms.uid[rows]) < p]
    assert len(expected) > 10
    exit_firms(state, model.params, draws)
    np.testing.assert_array_equal(np.flatnonzero(~firms.alive[rows]), np.searchsorted(rows, expected))


# --- each rule by its direction and value ----------------------------------------------------------------------------


def _documented_hazard(revenue: float, age: float, p) -> float:
    """The exit hazard as docs/parameters.md states it, written out here: exit_rate for a 1 M CNY firm, times
    (revenue / 1 M)^-exit_size_elasticity, times exp(-revenue / exit_shield_cny), times 1 + exit_youth_factor x exp(-age / 2)
    (the youth term fading over about two years)."""
    return (p.exit_rate * (max(revenue, 1.0) / 1e6) ** -p.exit_size_elasticity * np.exp(-max(revenue, 1.0) / p.exit_shield_cny)
            * (1.0 + p.exit_youth_factor * np.exp(-age / 2.0)))


OTHER_EXIT = {"exit_rate": 0.2, "exit_size_elasticity": 0.7, "exit_youth_factor": 3.0, "exit_shield_cny": 1e9}


@pytest.mark.parametrize("overrides", [{}, OTHER_EXIT])
def test_exit_hazard_is_the_documented_formula_at_every_age_and_size(overrides):
    """Young firms close more often (by 1 + youth at age 0, fading to nothing), small firms more than large ones, by value."""
    from twin.engine.firms import exit_hazard
    from twin.engine.params import Params

    p = Params(**overrides)
    revenue = np.array([1e4, 1e6, 3e7, 1e9, 2e10])[:, None]
    age = np.array([0.0, 0.25, 1.0, 2.0, 5.0, 20.0])[None, :]
    got = exit_hazard(revenue, age, p)
    expected = np.array([[_documented_hazard(r, a, p) for a in age[0]] for r in revenue[:, 0]])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert (np.diff(got, axis=1) < 0).all() and (np.diff(got, axis=0) < 0).all()  # falls with age and with size
    np.testing.assert_allclose(got[:, 0] / got[:, -1], 1.0 + p.exit_youth_factor, rtol=1e-3)  # a newborn: 1 + youth times an old firm's


def test_growth_is_the_documented_drift_term_by_term():
    """One month of _grow against the rule written out here, each term moved alone from a neutral firm, with its sign.

    Every firm gets the same id, so the same shock: the ratio of two firms' revenues is exp(the drift difference / 12).
    """
    from scipy import special

    from twin.engine.firms import MONTH, GrowthTerms, _grow
    from twin.engine.kernels import keyed_uniforms
    from twin.engine.params import INTENSITY

    terms = GrowthTerms(mu=0.05, youth_premium=0.2, youth_volatility=0.5, age_scale=3.0, year=2030.0, talent_weight=0.2, access_mean=1.0,
                        size_drag=0.04, labour_penalty=0.5, compute=0.1, compute_price=1.4, sigma=0.3, sigma_floor=1e6, sigma_power=-0.1,
                        sigma_at_floor=0.3 * 0.1**-0.1, decay=0.9, funding_return=0.0, sales_keep=0.9)
    # firm 0 is neutral; 1 densified since last month; 2 near talent; 3 large (drag); 4 short of workers; 5 as 0;
    # 6 policy growth; 7 of the least compute-intensive track; 8 young
    n = 9
    level, prior, access = np.full(n, 0.1), np.full(n, 0.1), np.full(n, 1.0)
    level[1], access[2] = 0.3, 3.0
    born = np.full(n, 2010.0, np.float32)
    born[8] = 2029.5
    revenue = np.full(n, 5e7)
    employees = np.full(n, 1000, np.int32)
    employees[4] = 0
    growth = np.zeros(n)
    growth[6] = 0.1
    track = np.full(n, int(np.argmax(INTENSITY)), np.int8)
    track[7] = int(np.argmin(INTENSITY))
    per_worker = np.full(n, 1e5)
    key, year_key, uid = np.uint64(12345), np.uint64(678), np.full(n, 77, np.int64)
    before = revenue.copy()
    revenue[3] = before[3] = 5e9
    _grow(np.ones(n, bool), level, prior, access, uid, track, born, employees, per_worker, growth, np.zeros(n), revenue,
          np.zeros(n), np.zeros(n, np.float32), INTENSITY, terms, key, year_key, np.zeros(n), np.zeros(n), np.zeros(n))
    shock = special.ndtri(keyed_uniforms(key, uid[:1], 1)[0, 0]) * np.sqrt(-np.log(keyed_uniforms(year_key, uid[:1], 1)[0, 0]))
    intensity = INTENSITY[track]
    price = terms.compute_price
    shortage = np.clip(1.0 - employees / np.maximum(1.0, before / per_worker), 0.0, 1.0)
    youth = np.exp(-(terms.year - born.astype(np.float64)) / terms.age_scale)
    sigma = terms.sigma * (before / 1e7) ** terms.sigma_power * (1.0 + terms.youth_volatility * youth)
    drift = (terms.mu + terms.youth_premium * youth + np.log(1.0 - sigma**2 / 2.0)
             + terms.talent_weight * (access - terms.access_mean) - terms.size_drag * np.log10(np.maximum(before, 1e8) / 1e8)
             - terms.labour_penalty * shortage
             - terms.compute * intensity * (price - 1.0) + growth)
    np.testing.assert_allclose(revenue, before * np.exp(drift * MONTH + sigma * np.sqrt(MONTH) * shock + level - 0.1), rtol=1e-12)
    np.testing.assert_array_equal(prior, level)  # each firm now holds this month's level
    rate = np.log(revenue / before) - sigma * np.sqrt(MONTH) * shock  # the month's drift of each firm
    np.testing.assert_allclose(rate[1] - rate[0], 0.2, rtol=1e-9)  # the level's change, once, not a twelfth of it
    assert rate[2] > rate[0] and rate[5] == rate[0] and rate[6] > rate[0] and rate[8] > rate[0]  # talent, policy, youth
    assert rate[3] < rate[0] and rate[4] < rate[0] and rate[7] > rate[0]  # size drag, shortage; dear compute hits intensive tracks


@pytest.fixture
def month_model(stack):
    """A small city one month in, with the inputs the firm processes take (fresh for each test: the processes change it)."""
    from twin.engine.effects import Effects
    from twin.engine.fields import neighbourhood_fields

    model = VisionValleyModel(seed=6, stack=stack, scale=0.01, anchors=0, birth_rate=0.2, relocation_rate=1.0)
    model.step()
    state = model.state
    fields = neighbourhood_fields(state, model.geo, model.params)
    effects = Effects.neutral(state.firms.n, len(model.geo.zone_ids))
    return model, fields, effects, model._cell_sampler(), model.streams.month(500)


def test_births_are_the_monthly_poisson_count_of_the_annual_rate(month_model):
    """found_firms starts at most the Poisson count of birth_rate / 12 x talent, and most of them find room."""
    from twin.engine.firms import found_firms
    from twin.engine.streams import poisson_quantile

    model, fields, effects, cells, draws = month_model
    mean = model.params.birth_rate / 12 * model.state.talent.count
    expected = poisson_quantile(draws.uniform("births", np.zeros(1, np.int64))[0], mean)
    assert abs(expected - mean) < 4 * np.sqrt(mean)
    born = found_firms(model.state, model.geo, model.params, fields, effects, cells, draws)
    assert 0.8 * expected <= born <= expected
    assert model.state.firms.count == int(model.state.firms.alive.sum())


def test_the_talent_pool_counts_an_anchors_workers_at_the_citys_scale(month_model):
    """Births and arrivals are proportional to the talent pool, where the workers of an anchor (full size at any scale)
    count times the scale: the head count less 99% of them at scale 0.01, the head count at scale 1, and the
    per-agent reference counts the same from its workers' employers."""
    from twin.engine.fields import talent_pool
    from twin.simulation.reference import ReferenceModel

    model = month_model[0]
    state, params = model.state, model.params
    state.firms.anchor[:5] = 0  # five anchors
    talent = state.talent
    at_anchors = int(np.isin(talent.firm[talent.alive], np.arange(5)).sum())
    assert params.scale == 0.01 and at_anchors > 0
    assert talent_pool(state, params) == pytest.approx(talent.count - 0.99 * at_anchors, rel=1e-12)
    assert talent_pool(state, params.with_overrides({"scale": 1.0})) == talent.count
    reference = ReferenceModel.mirror(state, model.geo, params, model.start_year)
    assert reference.talent_pool() == talent_pool(state, params)


def test_relocation_moves_only_firms_whose_draw_is_under_the_monthly_probability(month_model):
    """A firm re-chooses its site with probability 1 - exp(-relocation_rate / 12) a month; anchors never move."""
    from twin.engine.firms import relocate_firms

    model, fields, effects, cells, draws = month_model
    firms = model.state.firms
    firms.anchor[:5] = 0  # some anchors: they keep their HQ
    p = -np.expm1(-model.params.relocation_rate / 12)
    live = firms.alive.copy()
    eligible = live & (firms.anchor < 0) & (draws.uniform("relocate", firms.uid) < p)
    assert abs(eligible.sum() - p * (live & (firms.anchor < 0)).sum()) < 4 * np.sqrt(p * live.sum())
    before = firms.cell.copy()
    moved = relocate_firms(model.state, model.geo, model.params, fields, effects, cells, draws)
    changed = before != firms.cell
    assert moved == changed.sum() > 0.2 * eligible.sum()
    assert not (changed & ~eligible).any(), "a firm moved without its draw, or an anchor moved"


def test_a_hire_is_paid_the_offer_times_their_skill():
    """_hire: the wage is the firm's offer x the worker's skill; the firm gains a worker and the cell a desk."""
    from twin.engine.talent import _hire

    who, hiring, pick = np.array([0, 2]), np.array([1, 0]), np.array([0, 1])
    offer = np.array([1e5, 2e5], np.float32)
    skill = np.array([0.5, 1.0, 2.0], np.float32)
    firm_of, wage_of = np.full(3, -1, np.int32), np.zeros(3, np.float32)
    employees, cell, occupancy = np.zeros(2, np.int32), np.array([3, 4], np.int32), np.zeros(5)
    _hire(who, hiring, pick, offer, skill, firm_of, wage_of, employees, cell, occupancy, 20.0)
    assert firm_of.tolist() == [1, -1, 0] and wage_of.tolist() == [0.5 * 1e5, 0.0, 2.0 * 2e5]
    assert employees.tolist() == [1, 1] and occupancy.tolist() == [0, 0, 0, 20.0, 20.0]
