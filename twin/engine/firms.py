"""Firm processes, one month each: growth, exit, birth and relocation."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange
from scipy import special

from .choice import WeightedSampler, gumbel_argmax, ration
from .compiled import kernel, threaded
from .effects import Effects
from .fields import Fields, density_level, others_log_ratio, staff, talent_pool
from .geography import Geography
from .kernels import SLICES, add_at, keyed_normal, keyed_uniform
from .labour import LN_1E7, revenue_per_worker
from .land import floor_need, free_m2
from .params import INTENSITY, MONTH, TRACK_IDS, TRACK_SHARES, Params
from .state import State
from .streams import MonthDraws

SQRT_MONTH = np.sqrt(MONTH)
CONTRACT_YEARS = 1.0
"""Mean life of contract sales (Effects.sales): a contract of V adds V/yr to revenue that runs off exponentially, V in all."""
LN_10, LN_1E6, LN_1E8 = np.log(10.0), np.log(1e6), np.log(1e8)


def grow_firms(
    state: State, geo: Geography, params: Params, fields: Fields, effects: Effects, draws: MonthDraws, per_worker: np.ndarray | None = None
) -> None:
    """Growth with size, age, local and policy terms, Laplace shocks, and agglomeration as a productivity level.

    The drift is the mean growth of revenue, not of its log: each firm's
    drift is lowered by the shock's convexity, log(1 - sigma^2/2) a year for
    its Laplace shock, so a noisier firm grows as fast on average. Young
    firms grow faster and more variably, the excess fading with age
    (params.growth_youth_premium, growth_youth_volatility); the size drag
    acts above 1 亿. The shock is a normal from the firm's keyed uniform of
    the month times the square root of its exponential variance of the year
    (a keyed uniform of the year, by inverse CDF): a normal with exponential
    variance is Laplace, so both a month's and a year's growth are
    tent-shaped (docs/sources.md#s-lit-growth-laplace), and the same firm
    meets the same shocks in every scenario.

    Agglomeration is a level effect: revenue moves by the change of the
    firm's density level (fields.density_level) since last month, once, and
    not against any city mean, so denser neighbourhoods raise the city's
    output. The base year's firms start at their own level (their revenue is
    observed, so it holds their place already), newborns at the base year's
    employment-weighted mean level (``state.density_reference``, workers as
    fields.staff counts them: a start-up revenue is that of a typical
    place). Talent access still enters relative to its revenue-weighted
    city average.

    Policy funding enters a per-firm policy stock that decays with
    ``params.funding_half_life_years``; revenue is the organic part, which
    grows, plus ``params.funding_return`` times the stock, so a subsidy's
    effect fades instead of lasting (and compounding) forever
    (docs/levers.md). Contract sales (``effects.sales``) are a
    second such lift, at return 1 and a mean life of CONTRACT_YEARS, so a
    contract adds its value in sales and nothing after; ``effects.lasting``
    is added to the organic part and grows with it. ``per_worker`` is labour.revenue_per_worker of every
    firm row before growth, if the caller has it.
    """
    firms = state.firms
    workers = staff(firms.employees, firms.anchor, params.scale)
    level, access, access_mean = _local_terms(
        firms.alive, firms.track, firms.cell, firms.revenue, workers, geo.coarse_of, fields.employment, fields.employment_all, fields.per_km2,
        fields.self_weight, _density_terms(params), fields.talent_access
    )
    if np.isnan(state.density_reference):  # the first month: the base year's firms hold their level already
        live = firms.alive
        firms.density_level[live] = level[live]
        state.density_reference = float(np.average(level[live], weights=workers[live])) if workers[live].sum() > 0 else 0.0
    per_worker = revenue_per_worker(firms.revenue, params) if per_worker is None else per_worker
    terms = GrowthTerms(
        mu=params.growth_mu,
        youth_premium=params.growth_youth_premium,
        youth_volatility=params.growth_youth_volatility,
        age_scale=params.growth_age_scale_years,
        year=float(state.year),
        talent_weight=params.talent_weight,
        access_mean=access_mean,
        size_drag=params.growth_size_drag,
        labour_penalty=params.labour_penalty,
        compute=params.compute_weight * params.compute_cost_share,
        compute_price=state.compute_price,
        sigma=params.growth_sigma,
        sigma_floor=params.sigma_floor_cny,
        sigma_power=-params.sigma_size_elasticity,
        sigma_at_floor=params.growth_sigma * (params.sigma_floor_cny / 1e7) ** -params.sigma_size_elasticity,
        decay=np.exp(-np.log(2.0) / params.funding_half_life_years * MONTH),
        funding_return=params.funding_return,
        sales_keep=np.exp(-MONTH / CONTRACT_YEARS),
    )
    _grow(firms.alive, level, firms.density_level, access, firms.uid, firms.track, firms.born, firms.employees, per_worker,
          effects.growth, effects.funding, firms.revenue, firms.policy_stock, firms.funding, INTENSITY, terms,
          draws.key("grow"), draws.year_key("grow_variance"),
          effects.sales, effects.lasting, firms.policy_sales)


def _density_terms(params: Params) -> tuple[float, float, float]:
    """The elasticities and the floor of fields.density_level, in its order."""
    return params.urbanisation_elasticity, params.localisation_elasticity, params.density_floor_km2


@threaded(lambda alive, *_: len(alive))
def _local_terms(alive, track, cell, revenue, workers, coarse_of, employment, employment_all, per_km2, self_weight, density, access_of):  # noqa: ANN001, ANN201 (numba arrays)
    """Each live firm's density level (fields.density_level; ``workers`` as fields.staff counts them) and talent access,
    and the revenue-weighted city mean of access.

    One pass over the firm table; the weighted sums are taken per slice and
    added in slice order (kernels.SLICES), so the mean does not depend on the threads.
    """
    n = alive.shape[0]
    step = -(-n // SLICES)
    level, access = np.zeros(n), np.zeros(n)
    sums = np.zeros((SLICES, 2))  # revenue, revenue x access
    for part in prange(SLICES):
        weight, weighted_access = 0.0, 0.0  # summed here, stored once: threads writing neighbouring rows would share cache lines
        for i in range(part * step, min((part + 1) * step, n)):
            if alive[i]:
                coarse = coarse_of[cell[i]]
                level[i] = density_level(employment, employment_all, per_km2, self_weight, density, track[i], coarse, workers[i])
                access[i] = access_of[coarse]
                weight += revenue[i]
                weighted_access += revenue[i] * access[i]
        sums[part, 0], sums[part, 1] = weight, weighted_access
    total = np.zeros(2)
    for part in range(SLICES):
        total += sums[part]
    return level, access, total[1] / total[0]


class GrowthTerms(NamedTuple):
    """The month's scalars of :func:`grow_firms`, named for the kernel."""

    mu: float
    youth_premium: float  # extra growth of a newborn, fading as exp(-age / age_scale)
    youth_volatility: float  # a newborn's sd is (1 + this) times an established firm's
    age_scale: float
    year: float  # decimal year of the month, for ages
    talent_weight: float
    access_mean: float  # revenue-weighted city average
    size_drag: float
    labour_penalty: float
    compute: float  # compute_weight x compute_cost_share
    compute_price: float
    sigma: float
    sigma_floor: float
    sigma_power: float  # -sigma_size_elasticity
    sigma_at_floor: float  # sigma of a firm at or below the floor (one power a month, not one per small firm)
    decay: float  # of the policy stock over a month
    funding_return: float
    sales_keep: float  # share of contract sales left after a month


SIGMA_CAP = 1.0
"""The largest annual sd of a firm's growth: a Laplace shock's mean exp is 1/(1 - sigma^2/2), infinite from sqrt 2."""


@threaded(lambda alive, *_: len(alive))
def _grow(alive, level, prior, access, uid, track, born, employees, per_worker, growth, funding,
          revenue, stock, received, intensity, c, key, year_key,
          sales, lasting, contract):  # noqa: ANN001 (numba arrays)
    """One month of growth for the live firms (see grow_firms), in place, in one pass over the firm table.

    ``level`` (this month's density level) and ``access`` come from
    :func:`_local_terms`; ``prior`` is each firm's level last month, and
    becomes ``level``. The shock is the firm's keyed normal of the month
    times the root of its keyed exponential of the year, so the same firm
    meets the same shock in every scenario. Each firm's result depends on
    its own inputs only, so the threads cannot change a result. The size
    drag and the size-dependent sigma share one logarithm (a power is a
    logarithm and an exponential, and was most of the cost here).
    """
    for r in prange(alive.shape[0]):
        if not alive[r]:
            continue
        size = np.log(revenue[r])
        youth = np.exp(-(c.year - born[r]) / c.age_scale)
        sigma = c.sigma * np.exp(c.sigma_power * (size - LN_1E7)) if revenue[r] > c.sigma_floor else c.sigma_at_floor  # sigma x (revenue / 1e7)^power
        sigma = min(sigma * (1.0 + c.youth_volatility * youth), SIGMA_CAP)
        shortage = min(max(1.0 - employees[r] / max(1.0, revenue[r] / per_worker[r]), 0.0), 1.0)
        drift = (
            c.mu
            + c.youth_premium * youth
            + np.log(1.0 - 0.5 * sigma * sigma)  # the Laplace shock's convexity: the mean of revenue grows at mu
            + c.talent_weight * (access[r] - c.access_mean)
            - (c.size_drag * (size - LN_1E8) / LN_10 if revenue[r] > 1e8 else 0.0)  # log10(revenue / 1e8): the drag starts at 1 亿
            - c.labour_penalty * shortage
            - c.compute * intensity[track[r]] * (c.compute_price - 1.0)
            + growth[r]
        )
        fresh = stock[r] * c.decay + funding[r]
        organic = max(revenue[r] - c.funding_return * stock[r] - contract[r], 1.0) + lasting[r]  # the lifts do not compound: added back, decayed
        running = contract[r] * c.sales_keep + sales[r]
        shock = np.sqrt(-np.log(keyed_uniform(year_key, uid[r]))) * keyed_normal(key, uid[r])  # normal x root of an exponential: Laplace
        revenue[r] = organic * np.exp(drift * MONTH + sigma * SQRT_MONTH * shock + level[r] - prior[r]) + c.funding_return * fresh + running
        prior[r] = level[r]
        stock[r] = fresh
        contract[r] = running
        received[r] += np.float32(funding[r])


def exit_firms(state: State, params: Params, draws: MonthDraws) -> int:
    """Close firms with a hazard that falls with size and age; returns how many closed."""
    firms = state.firms
    closed = np.flatnonzero(_closing(firms.alive, firms.revenue, firms.born, firms.uid, float(state.year), _hazard_terms(params), draws.key("exit")))
    firms.kill(closed)
    np.subtract.at(state.occupancy_m2, firms.cell[closed], floor_need(firms.employees[closed], params))  # their desks empty
    return len(closed)


def exit_hazard(revenue: np.ndarray, age: np.ndarray, params: Params) -> np.ndarray:
    """Annual exit hazard: a power law in size, raised for young firms, and shielded for large ones.

    The factor exp(-revenue / exit_shield_cny) makes outright closure of a
    firm of tens of 亿 practically impossible (a 900 亿 firm: below 1e-6 in a
    decade); large firms shrink through growth instead. Without it 海康威视
    closed in about 1% of four-year runs.
    """
    revenue, age = np.broadcast_arrays(np.asarray(revenue, np.float64), np.asarray(age, np.float64))
    return _hazards(revenue.ravel(), age.ravel(), _hazard_terms(params)).reshape(revenue.shape)


def _hazard_terms(params: Params) -> tuple[float, float, float, float]:
    """The exit parameters, in the order :func:`_hazard` takes them."""
    return params.exit_rate, params.exit_size_elasticity, params.exit_youth_factor, params.exit_shield_cny


@kernel(inline="always")
def _hazard(revenue: float, age: float, terms: tuple[float, float, float, float]) -> float:
    """:func:`exit_hazard` of one firm."""
    rate, elasticity, youth, shield = terms
    revenue = max(revenue, 1.0)
    # rate x (revenue / 1e6)^-elasticity x exp(-revenue / shield), with the power and the shield in one exponential
    return rate * np.exp(-elasticity * (np.log(revenue) - LN_1E6) - revenue / shield) * (1.0 + youth * np.exp(-age / 2.0))


@kernel
def _hazards(revenue, age, terms):  # noqa: ANN001, ANN201 (numba arrays)
    """:func:`_hazard` of each firm."""
    out = np.empty(revenue.shape[0])
    for i in range(revenue.shape[0]):
        out[i] = _hazard(revenue[i], age[i], terms)
    return out


@threaded(lambda alive, *_: len(alive))
def _closing(alive, revenue, born, uid, year, terms, key):  # noqa: ANN001, ANN201 (numba arrays)
    """Whether each firm row closes this month: it is alive and its keyed uniform falls below the month's exit probability.

    No firm's probability passes that of the smallest live firm at age 0
    without the shield: the hazard only falls with size, age and the shield,
    and every operation in it is monotone. So a firm whose uniform is above
    that ceiling stays, and its hazard, most of the cost, need not be
    computed (about nine firms in ten).
    """
    rate, elasticity, youth, _ = terms
    smallest = np.inf
    for r in range(alive.shape[0]):
        if alive[r]:
            smallest = min(smallest, revenue[r])
    ceiling = -np.expm1(-_hazard(smallest, 0.0, (rate, elasticity, youth, np.inf)) * MONTH)
    out = np.zeros(alive.shape[0], np.bool_)
    for r in prange(alive.shape[0]):
        if alive[r]:
            u = keyed_uniform(key, uid[r])
            out[r] = u < ceiling and u < -np.expm1(-_hazard(revenue[r], year - born[r], terms) * MONTH)
    return out


def location_utility(
    cand: np.ndarray, track: np.ndarray, state: State, geo: Geography, params: Params, fields: Fields, effects: Effects
) -> np.ndarray:
    """Logit utility of candidate cells (choosers x candidates) for firms of the given tracks, metro access included."""
    weights = (params.location_agglomeration, params.location_talent, params.location_rent, params.university_weight, params.metro_weight_firm)
    return _location_utility(cand, np.asarray(track), geo.coarse_of, fields.density, fields.mean, fields.self_weight, fields.talent_access,
                             state.rent, geo.pull, geo.metro_access, geo.zone, effects.zone_appeal, weights)


@threaded(lambda cand, *_: cand.size)
def _location_utility(cand, track, coarse_of, density, mean, self_weight, access, rent, pull, metro, zone, zone_appeal, weights):  # noqa: ANN001, ANN201 (numba arrays)
    """:func:`location_utility` in one pass (float32): agglomeration of a newcomer (fields.others_log_ratio with no revenue
    of its own), talent access, rent, the pull of universities, metro access and the zone's appeal."""
    agglomeration, talent, rent_weight, university, metro_weight = weights
    n, k = cand.shape
    out = np.empty((n, k), np.float32)
    for i in prange(n):
        for j in range(k):
            c = cand[i, j]
            coarse = coarse_of[c]
            out[i, j] = (
                agglomeration * others_log_ratio(density, mean, self_weight, track[i], coarse, 0.0)
                + talent * access[coarse]
                - rent_weight * np.log(rent[c])
                + university * pull[c]
                + metro_weight * metro[c]
                + zone_appeal[zone[c]]
            )
    return out


def found_firms(
    state: State, geo: Geography, params: Params, fields: Fields, effects: Effects, cells: WeightedSampler, draws: MonthDraws
) -> int:
    """Start-ups and spin-offs, in number proportional to the talent pool (:func:`talent_pool`), placed by logit over sampled cells.

    The count is an inverse-CDF Poisson draw and each newborn's id depends
    only on the month and its index, so a scenario with a slightly higher
    birth rate has the same newborns plus perhaps one more, each with the same
    track, candidate cells, noise and start-up revenue (common random numbers).
    """
    n = draws.poisson("births", params.birth_rate * MONTH * talent_pool(state, params) * effects.births)
    if n == 0:
        return 0
    uid = draws.newborn_ids(n)
    track = np.minimum(np.searchsorted(np.cumsum(TRACK_SHARES), draws.uniform("birth_track", uid)), len(TRACK_IDS) - 1).astype(np.int8)
    cand = cells.pick(draws.uniform("birth_cells", uid, params.candidates))
    utility = location_utility(cand, track, state, geo, params, fields, effects)
    need = params.floor_m2_per_worker
    free = free_m2(state, cand)
    utility[free < need] = -np.inf
    pick = gumbel_argmax(utility, draws.uniform32("birth_noise", uid, params.candidates))
    cell, room = cand[np.arange(n), pick], free[np.arange(n), pick]
    ok = room >= need
    ok[ok] = ration(cell[ok], np.full(int(ok.sum()), need), room[ok], draws, uid[ok], "birth_order")
    k = int(ok.sum())
    state.add_firms(
        uid=uid[ok],
        track=track[ok],
        revenue=startup_quantile(draws.uniform("birth_revenue", uid[ok]), params),
        cell=cell[ok],
        born=np.full(k, state.year, np.float32),
        anchor=np.full(k, -1, np.int16),
        density_level=np.full(k, state.density_reference),  # a start-up revenue is that of a typical place (grow_firms)
    )
    add_at(state.occupancy_m2, cell[ok], need)
    return k


def relocate_firms(
    state: State, geo: Geography, params: Params, fields: Fields, effects: Effects, cells: WeightedSampler, draws: MonthDraws
) -> int:
    """A share of firms re-choose among their own cell and sampled others; anchors keep their HQ."""
    firms = state.firms
    movers = np.flatnonzero(_relocating(firms.alive, firms.anchor, firms.uid, draws.key("relocate"), -np.expm1(-params.relocation_rate * MONTH)))
    if len(movers) == 0:
        return 0
    here = firms.cell[movers]
    need = floor_need(firms.employees[movers], params)
    uid = firms.uid[movers]
    cand = cells.pick(draws.uniform("relocate_cells", uid, params.candidates))
    cand[:, 0] = here
    room = free_m2(state, cand) + np.where(cand == here[:, None], need[:, None], 0.0)  # staying needs no new room
    utility = location_utility(cand, firms.track[movers], state, geo, params, fields, effects)
    utility[room < need[:, None]] = -np.inf
    dest = cand[np.arange(len(movers)), gumbel_argmax(utility, draws.uniform32("relocate_noise", uid, params.candidates))]
    moving = np.flatnonzero(dest != here)
    moving = moving[ration(dest[moving], need[moving], free_m2(state, dest[moving]), draws, uid[moving], "relocate_order")]
    rows, old, new, space = movers[moving], here[moving], dest[moving], need[moving]
    firms.cell[rows] = new
    np.add.at(state.occupancy_m2, new, space)
    np.subtract.at(state.occupancy_m2, old, space)
    return len(rows)


@threaded(lambda alive, *_: len(alive))
def _relocating(alive, anchor, uid, key, p):  # noqa: ANN001, ANN201 (numba arrays)
    """Whether each firm row re-chooses its site this month: live, not an anchor, and its keyed uniform below ``p``
    (one pass, where numpy made the eligible rows, their ids and their uniforms in turn)."""
    out = np.zeros(alive.shape[0], np.bool_)
    for r in prange(alive.shape[0]):
        if alive[r] and anchor[r] < 0:
            out[r] = keyed_uniform(key, uid[r]) < p
    return out


def startup_revenue(n: int, params: Params, rng: np.random.Generator) -> np.ndarray:
    """Revenues of sub-规上 firms: lognormal truncated below the 规上 threshold (inverse-CDF draw)."""
    return startup_quantile(rng.random(n), params)


def startup_quantile(u: np.ndarray, params: Params) -> np.ndarray:
    """Start-up revenues at uniforms ``u``: the inverse CDF of the truncated lognormal, so keyed uniforms give keyed revenues."""
    top = special.ndtr((np.log(params.guishang_threshold_cny) - np.log(params.micro_median_cny)) / params.micro_sigma)
    z = special.ndtri(u * top)
    return np.exp(np.log(params.micro_median_cny) + params.micro_sigma * z)


def guishang_revenue(n: int, floor_cny: float, params: Params, rng: np.random.Generator) -> np.ndarray:
    """Revenues above ``floor_cny`` from the Pareto tail (params.guishang_pareto_alpha)."""
    return floor_cny * (1.0 - rng.random(n)) ** (-1.0 / params.guishang_pareto_alpha)
