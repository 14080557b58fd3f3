"""Firm processes, one month each: growth, exit, birth and relocation."""

from __future__ import annotations

import numpy as np
from scipy import special

from .choice import WeightedSampler, gumbel_argmax, ration
from .effects import Effects
from .fields import Fields, others_agglomeration
from .geography import Geography
from .labour import labour_demand
from .land import floor_need, free_m2
from .params import INTENSITY, TRACK_IDS, TRACK_SHARES, Params
from .state import State
from .streams import MonthDraws

MONTH = 1.0 / 12.0


def grow_firms(
    state: State, geo: Geography, params: Params, fields: Fields, effects: Effects, draws: MonthDraws, per_worker: np.ndarray | None = None
) -> None:
    """Gibrat growth with local drift: agglomeration, talent, labour shortage, compute cost and policy.

    Policy funding enters a per-firm policy stock that decays with
    ``params.funding_half_life_years``; revenue is the organic part, which
    follows the Gibrat process, plus ``params.funding_return`` times the
    stock, so a subsidy's effect fades instead of lasting (and compounding)
    forever (docs/levers.md).

    Agglomeration and talent access enter relative to their revenue-weighted
    city average, so they move growth between places rather than adding to
    the city's total. ``per_worker`` is labour.revenue_per_worker of every
    firm row before growth, if the caller has it.
    """
    firms = state.firms
    rows = np.flatnonzero(firms.alive)
    revenue, track = firms.revenue[rows], firms.track[rows]
    coarse = geo.coarse(firms.cell[rows])
    shortage = np.clip(1.0 - firms.employees[rows] / labour_demand(revenue, params, None if per_worker is None else per_worker[rows]), 0.0, 1.0)
    price = state.compute_price * (1.0 - effects.compute_subsidy[rows])
    agglomeration = others_agglomeration(fields, track, coarse, revenue)
    access = fields.talent_access[coarse]
    drift = (
        params.growth_mu
        + params.agglomeration_weight * (agglomeration - np.average(agglomeration, weights=revenue))
        + params.talent_weight * (access - np.average(access, weights=revenue))
        - params.growth_size_drag * np.log10(np.maximum(revenue / 1e8, 1.0))
        - params.labour_penalty * shortage
        - params.compute_weight * params.compute_cost_share * INTENSITY[track] * (price - 1.0)
        + effects.growth[rows]
    )
    sigma = params.growth_sigma * (np.maximum(revenue, params.sigma_floor_cny) / 1e7) ** -params.sigma_size_elasticity
    shock = special.ndtri(draws.uniform("grow", firms.uid[rows]))  # the same firm meets the same shock in every scenario
    funding = effects.funding[rows]
    stock = firms.policy_stock[rows]
    fresh = stock * np.exp(-np.log(2.0) / params.funding_half_life_years * MONTH) + funding
    organic = np.maximum(revenue - params.funding_return * stock, 1.0)  # the lift does not compound: it is added back, decayed
    firms.revenue[rows] = organic * np.exp(drift * MONTH + sigma * np.sqrt(MONTH) * shock) + params.funding_return * fresh
    firms.policy_stock[rows] = fresh
    firms.funding[rows] += funding.astype(np.float32)


def exit_firms(state: State, params: Params, draws: MonthDraws) -> int:
    """Close firms with a hazard that falls with size and age; returns how many closed."""
    firms = state.firms
    rows = np.flatnonzero(firms.alive)
    hazard = exit_hazard(firms.revenue[rows], state.year - firms.born[rows], params)
    closed = rows[draws.uniform("exit", firms.uid[rows]) < -np.expm1(-hazard * MONTH)]
    firms.kill(closed)
    return len(closed)


def exit_hazard(revenue: np.ndarray, age: np.ndarray, params: Params) -> np.ndarray:
    """Annual exit hazard: a power law in size, raised for young firms, and shielded for large ones.

    The factor exp(-revenue / exit_shield_cny) makes outright closure of a
    firm of tens of 亿 practically impossible (a 900 亿 firm: below 1e-6 in a
    decade); large firms shrink through growth instead. Without it 海康威视
    closed in about 1% of four-year runs.
    """
    revenue = np.maximum(revenue, 1.0)
    return (
        params.exit_rate
        * (revenue / 1e6) ** -params.exit_size_elasticity
        * (1.0 + params.exit_youth_factor * np.exp(-age / 2.0))
        * np.exp(-revenue / params.exit_shield_cny)
    )


def location_utility(
    cand: np.ndarray, track: np.ndarray, state: State, geo: Geography, params: Params, fields: Fields, effects: Effects
) -> np.ndarray:
    """Logit utility of candidate cells (choosers x candidates) for firms of the given tracks, metro access included."""
    coarse = geo.coarse(cand)
    return (
        params.location_agglomeration * fields.agglomeration[track[:, None], coarse]
        + params.location_talent * fields.talent_access[coarse]
        - params.location_rent * np.log(state.rent[cand])
        + params.university_weight * geo.pull[cand]
        + params.metro_weight_firm * geo.metro_access[cand]
        + effects.zone_appeal[geo.zone[cand]]
    ).astype(np.float32)


def found_firms(
    state: State, geo: Geography, params: Params, fields: Fields, effects: Effects, cells: WeightedSampler, draws: MonthDraws
) -> int:
    """Start-ups and spin-offs, in number proportional to the talent pool, placed by logit over sampled cells.

    The count is an inverse-CDF Poisson draw and each newborn's id depends
    only on the month and its index, so a scenario with a slightly higher
    birth rate has the same newborns plus perhaps one more, each with the same
    track, candidate cells, noise and start-up revenue (common random numbers).
    """
    n = draws.poisson("births", params.birth_rate * MONTH * state.talent.count * effects.births)
    if n == 0:
        return 0
    uid = draws.newborn_ids(n)
    track = np.minimum(np.searchsorted(np.cumsum(TRACK_SHARES), draws.uniform("birth_track", uid)), len(TRACK_IDS) - 1).astype(np.int8)
    cand = cells.pick(draws.uniform("birth_cells", uid, params.candidates))
    utility = location_utility(cand, track, state, geo, params, fields, effects)
    need = params.floor_m2_per_worker
    free = free_m2(state)
    utility[free[cand] < need] = -np.inf
    cell = cand[np.arange(n), gumbel_argmax(utility, draws.uniform32("birth_noise", uid, params.candidates))]
    ok = free[cell] >= need
    ok[ok] = ration(cell[ok], np.full(int(ok.sum()), need), free, draws, uid[ok], "birth_order")
    k = int(ok.sum())
    state.add_firms(
        uid=uid[ok],
        track=track[ok],
        revenue=startup_quantile(draws.uniform("birth_revenue", uid[ok]), params),
        cell=cell[ok],
        born=np.full(k, state.year, np.float32),
        anchor=np.full(k, -1, np.int16),
    )
    state.occupancy_m2 += np.bincount(cell[ok], minlength=geo.size) * need
    return k


def relocate_firms(
    state: State, geo: Geography, params: Params, fields: Fields, effects: Effects, cells: WeightedSampler, draws: MonthDraws
) -> int:
    """A share of firms re-choose among their own cell and sampled others; anchors keep their HQ."""
    firms = state.firms
    rows = np.flatnonzero(firms.alive & (firms.anchor < 0))
    movers = rows[draws.uniform("relocate", firms.uid[rows]) < -np.expm1(-params.relocation_rate * MONTH)]
    if len(movers) == 0:
        return 0
    here = firms.cell[movers]
    need = floor_need(firms.employees[movers], params)
    uid = firms.uid[movers]
    cand = cells.pick(draws.uniform("relocate_cells", uid, params.candidates))
    cand[:, 0] = here
    free = free_m2(state)
    room = free[cand] + np.where(cand == here[:, None], need[:, None], 0.0)  # staying needs no new room
    utility = location_utility(cand, firms.track[movers], state, geo, params, fields, effects)
    utility[room < need[:, None]] = -np.inf
    dest = cand[np.arange(len(movers)), gumbel_argmax(utility, draws.uniform32("relocate_noise", uid, params.candidates))]
    moving = np.flatnonzero(dest != here)
    moving = moving[ration(dest[moving], need[moving], free, draws, uid[moving], "relocate_order")]
    rows, old, new, space = movers[moving], here[moving], dest[moving], need[moving]
    firms.cell[rows] = new
    state.occupancy_m2 += np.bincount(new, space, minlength=geo.size) - np.bincount(old, space, minlength=geo.size)
    return len(rows)


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
