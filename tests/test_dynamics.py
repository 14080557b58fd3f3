"""Firm dynamics by direction and value: mean growth that volatility does not raise, Laplace shocks, growth and
volatility falling with age and size, and agglomeration as a productivity level that concentration can raise.

The growth kernel (twin/engine/firms.py ``_grow``) is driven directly over many identical firms and a year of
months with the engine's keyed streams, so each rule is measured alone; the level effect is then checked on a real
small city's fields.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from scipy import stats

from twin.engine.effects import Effects
from twin.engine.fields import neighbourhood_fields
from twin.engine.firms import GrowthTerms, _grow, grow_firms
from twin.engine.params import INTENSITY
from twin.engine.streams import Streams
from twin.model import VisionValleyModel

N = 200_000
YEAR = 2030.0
NEUTRAL = GrowthTerms(mu=0.08, youth_premium=0.0, youth_volatility=0.0, age_scale=3.0, year=YEAR, talent_weight=0.0, access_mean=0.0,
                      size_drag=0.0, labour_penalty=0.0, compute=0.0, compute_price=1.0, sigma=0.3, sigma_floor=1e6, sigma_power=0.0,
                      sigma_at_floor=0.3, decay=1.0, funding_return=0.0, sales_keep=1.0)
"""An established 10 M firm's growth with every local term off and volatility independent of size."""


def _year_of_growth(terms: GrowthTerms, revenue: float | np.ndarray = 1e7, born: float | np.ndarray = 1990.0,
                    months: int = 12, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Revenue before and after ``months`` months of _grow for ``n`` firms, keyed draws of seed 3 in the year 2030."""
    streams = Streams(3)
    uid = np.arange(n, dtype=np.int64)
    revenue = np.broadcast_to(np.asarray(revenue, np.float64), (n,)).copy()
    born = np.broadcast_to(np.asarray(born, np.float32), (n,)).copy()
    start = revenue.copy()
    zeros, level = np.zeros(n), np.zeros(n)
    for m in range(months):
        month = int(YEAR) * 12 + m
        _grow(np.ones(n, bool), level, level.copy(), zeros, uid, np.zeros(n, np.int8), born, np.full(n, 10**6, np.int32), np.full(n, 1.0),
              zeros, zeros, revenue, zeros.copy(), np.zeros(n, np.float32), INTENSITY,
              terms._replace(year=YEAR + m / 12), streams.key("grow", month), streams.key("grow_variance", month // 12),
              zeros, zeros, zeros.copy())
    return start, revenue


@pytest.mark.parametrize("sigma", [0.0, 0.15, 0.35, 0.6])
def test_mean_growth_is_the_parameter_whatever_the_volatility(sigma):
    """E[revenue after a year / before] = exp(growth_mu) at every sigma: the convexity correction takes sigma^2/2 out.
    Without it a Laplace shock of sd 0.35 adds 6.5% a year (1 / (1 - 0.35^2/2)), sd 0.6 adds 22%."""
    start, end = _year_of_growth(NEUTRAL._replace(sigma=sigma, sigma_at_floor=sigma))
    ratio = end / start
    assert ratio.mean() == pytest.approx(np.exp(NEUTRAL.mu), rel=0.004 + 0.01 * sigma**2)
    assert np.log(ratio).std() == pytest.approx(sigma, rel=0.01, abs=1e-12)  # the sd a year is sigma


def test_the_shocks_are_laplace_in_a_month_and_in_a_year():
    """Log growth over a month and over a year has the Laplace's excess kurtosis 3 (kurtosis 6), not the normal's 0;
    the keyed draws are a normal times the root of an exponential of the year."""
    _, month = _year_of_growth(NEUTRAL, months=1)
    _, year = _year_of_growth(NEUTRAL)
    for growth in (np.log(month / 1e7), np.log(year / 1e7)):
        assert stats.kurtosis(growth) == pytest.approx(3.0, abs=0.3)
        assert abs(stats.skew(growth)) < 0.1
    laplace = stats.laplace(scale=NEUTRAL.sigma / np.sqrt(2))  # the shape, not only the fourth moment
    assert stats.kstest(np.log(year / 1e7) - np.log(year / 1e7).mean(), laplace.cdf).statistic < 0.01


def test_growth_and_its_volatility_fall_with_age_and_size():
    """A newborn grows faster and more variably than a firm of 3 and of 10 years; above 1 亿, larger firms grow slower
    and steadier (size drag, sd as size^-beta). Mean growth of revenue, measured over a year of keyed months."""
    terms = NEUTRAL._replace(youth_premium=0.1, youth_volatility=0.5, size_drag=0.02, sigma_power=-0.2)
    by_age = [_year_of_growth(terms, born=YEAR - age, n=50_000) for age in (0.0, 3.0, 10.0)]
    mean = [np.mean(end / start) for start, end in by_age]
    spread = [np.log(end / start).std() for start, end in by_age]
    assert mean[0] > mean[1] > mean[2] and spread[0] > spread[1] > spread[2]
    assert np.log(mean[0] / mean[2]) == pytest.approx(0.1 * np.mean(np.exp(-np.arange(12) / 36)) - 0.1 * np.exp(-10 / 3), rel=0.15)
    by_size = [_year_of_growth(terms, revenue=size, n=50_000) for size in (1e8, 1e9, 1e10)]
    mean = [np.mean(end / start) for start, end in by_size]
    spread = [np.log(end / start).std() for start, end in by_size]
    assert mean[0] > mean[1] > mean[2] and spread[0] > spread[1] > spread[2]
    assert spread[0] / spread[1] == pytest.approx(10**0.2, rel=0.03)  # beta = 0.2 per tenfold


# --- agglomeration as a level ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def city(stack):
    """A small city two months in (levels and the newborns' reference set), and its parameters."""
    model = VisionValleyModel(seed=4, stack=stack, scale=0.01, anchors=0)
    model.step()
    model.step()
    return model


def _grow_month(model: VisionValleyModel, state, params, month: int = 600) -> None:  # noqa: ANN001
    """grow_firms on ``state`` with neutral policy and fields taken from it, the keyed draws of ``month``."""
    fields = neighbourhood_fields(state, model.geo, params)
    per_worker = np.full(state.firms.n, 1e12)  # nobody is short of workers
    grow_firms(state, model.geo, params, fields, Effects.neutral(state.firms.n, len(model.geo.zone_ids)), model.streams.month(month),
               per_worker)


def test_a_densified_neighbourhood_raises_a_firm_once_by_the_elasticity(city):
    """Another firm in the same coarse cell gains 5,000 workers: the firm's revenue rises by exp(epsilon x delta log density)
    against the same month without them, and next month, with the density unchanged, the gap neither grows nor shrinks
    (no volatility, size drag, talent term or funding lift here: volatility and drag move with size, talent access is measured against a
    revenue-weighted mean, and the policy stock's lift is added to revenue, so each would move the gap a little)."""
    params = dataclasses.replace(city.params, growth_sigma=0.0, talent_weight=0.0, funding_return=0.0, growth_size_drag=0.0)
    plain, dense = copy.deepcopy(city.state), copy.deepcopy(city.state)
    firms = plain.firms
    live = np.flatnonzero(firms.alive)
    coarse = city.geo.coarse_of[firms.cell[live]]
    focal = live[np.argmax(np.bincount(coarse)[coarse] > 1)]  # a firm sharing its coarse cell with another
    other = live[(coarse == city.geo.coarse_of[firms.cell[focal]]) & (live != focal)][0]
    fields = neighbourhood_fields(plain, city.geo, params)
    added = 5000
    dense.firms.employees[other] += added
    c, t = city.geo.coarse_of[firms.cell[focal]], firms.track[focal]
    own = firms.employees[focal] * fields.self_weight  # no anchors in this city: staff is the employees

    def log_density(smoothed: float) -> float:
        return np.log(max(smoothed - own, 0.0) * fields.per_km2 + params.density_floor_km2)

    rise = added * fields.self_weight
    same_track = t == firms.track[other]
    expected = (params.urbanisation_elasticity * (log_density(fields.employment_all[c] + rise) - log_density(fields.employment_all[c]))
                + params.localisation_elasticity * same_track * (log_density(fields.employment[t, c] + rise) - log_density(fields.employment[t, c])))
    assert expected > 0.005
    for month in (600, 601):
        _grow_month(city, plain, params, month)
        _grow_month(city, dense, params, month)
        assert np.log(dense.firms.revenue[focal] / plain.firms.revenue[focal]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("elasticity", [0.0, 0.05])
def test_concentration_raises_total_output_by_what_the_elasticity_bounds(city, elasticity):
    """The same firms, half of them moved into the densest coarse cell: with elasticity 0 the city's revenue is the same
    to the yuan; with 0.05 (urbanisation only) it rises, by exp of the revenue-weighted mean change of 0.05 x log density."""
    params = dataclasses.replace(city.params, urbanisation_elasticity=elasticity, localisation_elasticity=0.0, talent_weight=0.0,
                                 funding_return=0.0)
    spread, packed = copy.deepcopy(city.state), copy.deepcopy(city.state)
    live = np.flatnonzero(spread.firms.alive)
    geo = city.geo
    fields = neighbourhood_fields(spread, geo, params)
    densest = int(np.argmax(fields.employment_all))
    target = np.flatnonzero(geo.coarse_of == densest)
    target = target[spread.capacity_m2[target] > 0][0]
    movers = live[::2]
    packed.firms.cell[movers] = target
    _grow_month(city, spread, params)
    _grow_month(city, packed, params)
    gain = np.log(packed.firms.revenue[live].sum() / spread.firms.revenue[live].sum())
    if elasticity == 0.0:
        assert gain == 0.0
        return
    change = packed.firms.density_level[live] - spread.firms.density_level[live]  # elasticity x change of log density, per firm
    weights = spread.firms.revenue[live] / spread.firms.revenue[live].sum()
    assert gain > 0.01
    assert gain == pytest.approx(np.log(np.sum(weights * np.exp(change))), rel=1e-6)
    assert gain < elasticity * np.log(fields.employment_all.max() * fields.per_km2 / params.density_floor_km2 + 1)  # at most the whole range
