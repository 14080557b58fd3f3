"""Talent processes, one month each: leaving, quitting, in-migration, job matching and home choice."""

from __future__ import annotations

import numpy as np
from numba import prange
from scipy import special

from .choice import WeightedSampler, gumbel_log, ration
from .compiled import kernel, threaded
from .effects import Effects
from .fields import talent_pool
from .geography import Geography
from .kernels import SLICES, add_at, cell_centres, keyed_halves, near_choice, release_closed
from .labour import revenue_per_worker, wage_offer
from .land import free_m2
from .params import MONTH, Params
from .state import State
from .streams import Draws, MonthDraws, as_draws

CHUNK = 131_072


def step_talent(
    state: State, geo: Geography, params: Params, effects: Effects, homes: WeightedSampler, draws: MonthDraws, per_worker: np.ndarray | None = None
) -> None:
    """Separations, then in-migration to meet demand, then matching, then home moves.

    Every draw is keyed by the worker's stable id (common random numbers):
    one hash per worker a month decides both whether an employed worker
    separates and whether anybody moves home (two independent 32-bit
    halves, :func:`_talent_month`), so the whole population is hashed once.
    Arrivals are counted by inverse CDF and get ids from (month, index), so
    a scenario that attracts a few more people has the same newcomers plus
    the extra ones. ``per_worker`` is labour.revenue_per_worker of every
    firm row, if the caller has it.
    """
    talent, firms = state.talent, state.firms
    key = draws.key("talent_month")
    p_leave = -np.expm1(-params.leave_rate_employed * MONTH / effects.talent_retention)
    p_move = -np.expm1(-params.home_move_rate * MONTH)
    seekers, separated, leaving, movers = _talent_month(
        key, talent.uid, talent.alive, talent.firm, _below32(p_leave), _below32(p_leave - np.expm1(-params.quit_rate * MONTH)), _below32(p_move)
    )
    _separate(state, params, separated, leaving)
    p_leave = -np.expm1(-params.leave_rate_seeking * MONTH / effects.talent_retention)
    stay = draws.uniform("seeker_leave", talent.uid[seekers]) >= p_leave
    _leave(state, seekers[~stay])
    seekers = seekers[stay]
    per_worker = revenue_per_worker(firms.revenue, params) if per_worker is None else per_worker  # revenue does not change here
    vacancies = open_positions(state, params, per_worker)
    unmet = max(0.0, float(vacancies.sum()) - len(seekers))
    arrivals = draws.poisson(
        "arrivals", effects.talent_inflow * (params.inflow_response * unmet + params.inflow_base * MONTH * talent_pool(state, params))
    )
    if arrivals:
        uid = draws.newborn_ids(arrivals)
        home = choose_homes(np.full(arrivals, -1), state, geo, params, homes, draws, uid)
        new = talent.append(uid=uid, skill=skill_quantile(draws.uniform("arrival_skill", uid), params), home=home, firm=np.full(arrivals, -1, np.int32))
        add_at(state.residents, home, 1)
        seekers = np.concatenate([seekers, new])
        state.log.talent_in += arrivals
        # newcomers may move again within the month, as anybody: the same hash, the same threshold
        movers = np.concatenate([movers, new[_talent_month(key, uid, np.ones(arrivals, bool), talent.firm[new], np.uint64(0), np.uint64(0), _below32(p_move))[3]]])
    state.log.hires += match_jobs(seekers, vacancies, state, geo, params, draws, per_worker)
    movers = movers[talent.alive[movers]]
    work = np.where(talent.firm[movers] >= 0, firms.cell[np.maximum(talent.firm[movers], 0)], -1)
    home = choose_homes(work, state, geo, params, homes, draws, talent.uid[movers])
    add_at(state.residents, talent.home[movers], -1)
    add_at(state.residents, home, 1)
    talent.home[movers] = home


def release_workers_of_closed_firms(state: State) -> None:
    """Workers whose firm closed become job seekers (one gather over the talent table)."""
    talent = state.talent
    release_closed(talent.firm, state.firms.alive_all, talent.alive, talent.wage)


def _below32(p: float) -> np.uint64:
    """The threshold below which a 32-bit draw (kernels.keyed_halves) is an event of probability ``p``."""
    return np.uint64(round(min(max(p, 0.0), 1.0) * 2.0**32))


@threaded(lambda key, uid, *_: len(uid))
def _talent_month(key, uid, alive, firm, leave_below, separate_below, move_below):  # noqa: ANN001, ANN201 (numba arrays)
    """Rows of this month's seekers, separated, leaving and home movers, in row order, from one keyed hash per live worker.

    The high half of the hash decides separation (below ``separate_below``;
    below ``leave_below`` the worker leaves the city, else quits and seeks);
    the low half decides a home move, so the two events are independent as
    separate draws would be. Workers without a job are seekers. A first pass
    codes each row (bits: seeker, separated, leaving, mover); a second packs
    each slice's rows of each kind, and the slices are joined in order: the
    same rows on any number of threads.
    """
    n = uid.shape[0]
    step = -(-n // SLICES)
    codes = np.empty(n, np.uint8)
    for part in prange(SLICES):
        for i in range(part * step, min((part + 1) * step, n)):
            # without branches: who is employed or moving is as good as random, and mispredictions would cost more than the hash
            high, low = keyed_halves(key, uid[i])
            employed = np.uint8(firm[i] >= 0)
            separates = employed & np.uint8(high < separate_below)
            leaves = separates & np.uint8(high < leave_below)
            seeks = (employed ^ 1) | (separates & (leaves ^ 1))
            codes[i] = np.uint8(alive[i]) * (seeks | separates << 1 | leaves << 2 | (np.uint8(low < move_below) & (leaves ^ 1)) << 3)
    found = np.empty((4, n), np.int64)  # kind b's rows of each slice, from the slice's start (only the used pages are touched)
    counts = np.zeros((SLICES, 4), np.int64)
    for part in prange(SLICES):
        at = np.zeros(4, np.int64)  # counted here, stored once: threads writing neighbouring rows would share cache lines
        for i in range(part * step, min((part + 1) * step, n)):
            if codes[i]:  # few workers: the branch is cheap
                for b in range(4):
                    if (codes[i] >> b) & 1:
                        found[b, part * step + at[b]] = i
                        at[b] += 1
        counts[part] = at
    return _gather(found, counts, step, 0), _gather(found, counts, step, 1), _gather(found, counts, step, 2), _gather(found, counts, step, 3)


@kernel
def _gather(found, counts, step, kind):  # noqa: ANN001, ANN201 (numba arrays)
    """The rows of one kind from every slice of :func:`_talent_month`, in order."""
    out = np.empty(counts[:, kind].sum(), np.int64)
    at = 0
    for part in range(counts.shape[0]):
        out[at : at + counts[part, kind]] = found[kind, part * step : part * step + counts[part, kind]]
        at += counts[part, kind]
    return out


def _separate(state: State, params: Params, separated: np.ndarray, leaving: np.ndarray) -> None:
    """Separated workers leave their employer's payroll and desk; those ``leaving`` also leave the city."""
    talent, firms = state.talent, state.firms
    _quit(separated, talent.firm, talent.wage, firms.employees, firms.cell, state.occupancy_m2, params.floor_m2_per_worker)
    _leave(state, leaving)


@kernel
def _quit(rows, firm_of, wage_of, employees, cell, occupancy, floor):  # noqa: ANN001 (numba arrays)
    """Workers ``rows`` leave their employer's payroll and free their desk, in one pass (the order of the desk sums kept)."""
    for i in range(rows.shape[0]):
        e = firm_of[rows[i]]
        employees[e] -= 1
        occupancy[cell[e]] -= floor
        firm_of[rows[i]] = -1
        wage_of[rows[i]] = 0.0


def _leave(state: State, rows: np.ndarray) -> None:
    """Talent leave the city: their rows die and their homes empty."""
    state.talent.kill(rows)
    add_at(state.residents, state.talent.home[rows], -1)
    state.log.talent_out += len(rows)


def open_positions(state: State, params: Params, per_worker: np.ndarray | None = None) -> np.ndarray:
    """Positions each firm row can fill now: unfilled labour demand, scaled down where its cell lacks desks.

    Firms in a full cell do not advertise what they could not seat, so
    neither job search nor in-migration chases them.
    """
    firms = state.firms
    per_worker = revenue_per_worker(firms.revenue, params) if per_worker is None else per_worker
    gap = _gaps(firms.alive, firms.revenue, per_worker, firms.employees)
    return _shares(gap, firms.cell, state.capacity_m2, state.occupancy_m2, _wanted(gap, firms.cell, len(state.capacity_m2)),
                   params.floor_m2_per_worker)


@threaded(lambda alive, *_: len(alive))
def _gaps(alive, revenue, per_worker, employees):  # noqa: ANN001, ANN201 (numba arrays)
    """Each firm row's unfilled labour demand in whole positions (0 for dead rows), on every core."""
    gap = np.zeros(alive.shape[0])
    for i in prange(alive.shape[0]):
        if alive[i]:
            gap[i] = max(np.ceil(max(1.0, revenue[i] / per_worker[i])) - employees[i], 0.0)
    return gap


@kernel
def _wanted(gap, cell, size):  # noqa: ANN001, ANN201 (numba arrays)
    """Unfilled positions summed per cell, in row order.

    Every row adds, staffed ones a zero (which changes no sum): most firms
    are staffed and which ones is as good as random, so a test would be a
    misprediction more often than a cache miss is saved.
    """
    wanted = np.zeros(size, np.float32)  # whole positions, exact in float32: half the fresh pages of a grid-sized array
    for i in range(gap.shape[0]):
        wanted[cell[i]] += gap[i]
    return wanted


@threaded(lambda gap, *_: len(gap))
def _shares(gap, cell, capacity, occupancy, wanted, floor):  # noqa: ANN001, ANN201 (numba arrays)
    """Each firm's unfilled positions scaled down to its share of its cell's free desks, on every core."""
    out = np.zeros(gap.shape[0])
    for i in prange(gap.shape[0]):
        if gap[i] > 0:
            c = cell[i]
            out[i] = np.floor(gap[i] * min(1.0, max(capacity[c] - occupancy[c], 0.0) / floor / wanted[c]))
    return out


def match_jobs(
    seekers: np.ndarray, vacancies: np.ndarray, state: State, geo: Geography, params: Params, draws: MonthDraws, per_worker: np.ndarray | None = None
) -> int:
    """Seekers pick among sampled vacancies by wage and commute; firms and floor space ration the picks."""
    talent, firms = state.talent, state.firms
    if len(seekers) == 0 or vacancies.sum() == 0:
        return 0
    hiring = np.flatnonzero(vacancies > 0)  # the firms with openings; the choice works on positions in this list, small tables
    openings = vacancies[hiring]
    jobs = WeightedSampler(np.arange(len(hiring)), openings)
    offer = wage_offer(firms.revenue[hiring], params, None if per_worker is None else per_worker[hiring])
    uid = talent.uid[seekers]
    cand = jobs.pick(draws.uniform("job_candidates", uid, params.job_candidates))
    noise = draws.uniform32("job_noise", uid, params.job_candidates)
    pick, reachable = choose_near(talent.home[seekers], cand, firms.cell[hiring], np.log(offer), geo, params, noise)
    applied = np.flatnonzero(reachable)
    hired = applied[ration(pick[applied], np.ones(len(applied)), openings[pick[applied]], draws, uid[applied], "hire_order")]
    cells = firms.cell[hiring[pick[hired]]]
    hired = hired[ration(cells, np.full(len(hired), params.floor_m2_per_worker), free_m2(state, cells), draws, uid[hired], "desk_order")]
    _hire(seekers[hired], hiring, pick[hired], offer, talent.skill, talent.firm, talent.wage, firms.employees, firms.cell,
          state.occupancy_m2, params.floor_m2_per_worker)
    return len(hired)


@kernel
def _hire(who, hiring, pick, offer, skill, firm_of, wage_of, employees, cell, occupancy, floor):  # noqa: ANN001 (numba arrays)
    """Workers ``who`` join the firms ``hiring[pick]`` at the offer times their skill, and take a desk there.

    One pass instead of a dozen numpy gathers and scatters; the desks are
    added in the order of the hires, as a scatter-add would, so the sums
    do not change.
    """
    for i in range(who.shape[0]):
        w, e = who[i], hiring[pick[i]]
        firm_of[w] = e
        wage_of[w] = offer[pick[i]] * skill[w]
        employees[e] += 1
        occupancy[cell[e]] += floor


def choose_homes(
    work: np.ndarray,
    state: State,
    geo: Geography,
    params: Params,
    homes: WeightedSampler,
    draws: Draws | np.random.Generator,
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """Home cells by logit over candidates sampled in proportion to housing: rent, metro access and commute (none if work is -1).

    Sampling in proportion to housing stands for "more homes, more chances";
    a worker whose candidates are all beyond the longest commute takes the
    first one, as a real long-distance commuter would.
    """
    draws = as_draws(draws)
    ids = np.arange(len(work)) if ids is None else ids
    home = np.empty(len(work), np.int32)
    appeal = home_appeal(geo, params)
    for start in range(0, len(work), CHUNK):  # bounds the (choosers x candidates) temporaries when a whole city moves in
        part, who = work[start : start + CHUNK], ids[start : start + CHUNK]
        cells = homes.pick(draws.uniform("home_candidates", who, params.home_candidates))
        noise = draws.uniform32("home_noise", who, params.home_candidates)
        home[start : start + CHUNK], _ = choose_near(part, cells, None, appeal, geo, params, noise)
    return home


def home_appeal(geo: Geography, params: Params) -> np.ndarray:
    """What a home cell offers before the commute: cheap rent and metro access (float32; kept in ``geo.memo``, it never changes)."""
    key = ("home_appeal", params.rent_weight_home, params.metro_weight_home)
    if key not in geo.memo:
        geo.memo[key] = np.float32(-params.rent_weight_home) * geo.log_base_rent + np.float32(params.metro_weight_home) * geo.metro_access
    return geo.memo[key]


def choose_near(
    origin: np.ndarray, cand: np.ndarray, cell_of: np.ndarray | None, score_of: np.ndarray, geo: Geography, params: Params, noise: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Logit over candidates (choosers x k) at cells ``cell_of[cand]`` (the candidates themselves if None), scored
    ``score_of[cand] - commute cost x km`` from each origin cell.

    Candidates beyond the longest commute are out of reach; an origin of -1
    means no commute term. ``noise`` holds the float32 uniforms behind the
    Gumbel draws (choosers x k, Draws.uniform32; consumed). Returns each
    chooser's pick and whether it is in reach (a chooser with nothing in
    reach keeps its first candidate). The scoring is one compiled pass
    (kernels.near_choice) rather than a dozen (choosers x k) temporaries.
    """
    centre_of = None if cell_of is None else cell_centres(cell_of, geo.shape[1], geo.cell_m / 1000.0)
    return near_choice(
        np.asarray(origin), cand, centre_of, score_of.astype(np.float32, copy=False), geo.shape[1], geo.cell_m / 1000.0,
        np.float32(params.commute_cost), np.float32(params.commute_max_km), gumbel_log(noise),
    )


def draw_skill(n: int, params: Params, rng: np.random.Generator) -> np.ndarray:
    """Relative skill: lognormal with mean 1 and log-sd params.skill_sigma."""
    return np.exp(rng.normal(-0.5 * params.skill_sigma**2, params.skill_sigma, n)).astype(np.float32)


def skill_quantile(u: np.ndarray, params: Params) -> np.ndarray:
    """The skill distribution of :func:`draw_skill` at uniforms ``u`` (inverse CDF, for keyed draws)."""
    return np.exp(params.skill_sigma * special.ndtri(u) - 0.5 * params.skill_sigma**2).astype(np.float32)
