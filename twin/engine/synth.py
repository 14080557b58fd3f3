"""The base year: a seeded synthesis of the 2023 population that matches the known figures.

Known and kept: the 844 规上 firms (scaled with ``params.scale``), the anchor
firms at their real headquarters with their sourced revenues
(gis_data/anchor_firms.csv), districts' shares of firms from their GDP and
population (gis_data/district_stats.csv). Everything else comes from the
documented assumptions in :mod:`twin.params`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layers import InputError, LayerStack

from .baseyear import anchor_revenue_in_year
from .choice import WeightedSampler, ration
from .firms import guishang_revenue, startup_revenue
from .geography import Geography
from .kernels import add_at
from .labour import labour_demand, wage_offer
from .land import floor_need, free_m2, occupancy, update_land
from .params import TRACK_IDS, TRACK_SHARES, Params
from .state import State
from .talent import choose_homes, draw_skill


def synthesize(geo: Geography, params: Params, year: float, rng: np.random.Generator, stack: LayerStack) -> State:
    """Build the base-year state: anchor firms, synthesized firms, their workers and seekers, compute.

    The tables (anchor firms, their revenue series, compute centres) come from ``stack``, the run's layers,
    so a scenario's ``layers:`` can replace them and the manifest hashes the files read.
    """
    firms, talent, compute, parks = State.empty_tables()
    state = State(firms, talent, compute, parks, geo.capacity_m2.copy(), np.zeros(geo.size), geo.base_rent.copy(), np.zeros(geo.size, np.int32), year)
    anchors = anchor_firms(geo, params, rng, stack, int(year))
    if not params.anchors:
        anchors = anchors.iloc[:0]
    state.anchor_ids = tuple(anchors["id"])
    if len(anchors):
        _add_firms(state, anchors, geo, params, rng, fixed=True)
    _add_firms(state, _synthetic_firms(len(anchors), anchors["revenue"].to_numpy(), params, year, rng), geo, params, rng, fixed=False)
    _add_talent(state, geo, params, rng)
    _add_compute(state, geo, stack)
    state.occupancy_m2 = occupancy(state, params, geo.size)
    update_land(state, geo, params)
    return state


def anchor_firms(geo: Geography, params: Params, rng: np.random.Generator, stack: LayerStack, year: int = 2023) -> pd.DataFrame:
    """Anchor firms at their anchor points, with their revenues of ``year`` (the base year) and founding years.

    A consolidated subsidiary (a ``parent`` given, e.g. 萤石网络 inside
    海康威视) is not an agent: its revenue is already in its parent's, and
    adding it would count it twice. A missing revenue (中控技术) is drawn
    from the leader tail and its ``revenue_status`` stays ``assumed``.
    """
    path, table = stack.files["anchor_firms"], stack.anchor_firms
    unknown = sorted(set(table["id"]) - set(geo.anchor_cells))
    if unknown:
        raise InputError(path, "id", f"anchor(s) {', '.join(unknown)} are not in the anchors layer")
    bad = sorted(set(table["track"]) - set(TRACK_IDS))
    if bad:
        raise InputError(path, "track", f"unknown track(s) {', '.join(bad)}; tracks are {', '.join(TRACK_IDS)}")
    orphans = sorted(set(table["parent"]) - set(table["id"]) - {""})
    if orphans:
        raise InputError(path, "parent", f"parent(s) {', '.join(orphans)} are not anchor firms")
    table = table[table["parent"] == ""].reset_index(drop=True)
    revenue = pd.to_numeric(table["revenue_cny"], errors="coerce").to_numpy(dtype=float, copy=True)
    revenue = anchor_revenue_in_year(table["id"].to_numpy(), revenue, year, stack.anchor_revenue_series)
    founded = pd.to_numeric(table["founded"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(founded).any():
        raise InputError(path, "founded", f"missing founding year for {', '.join(table['id'][np.isnan(founded)])}")
    missing = np.isnan(revenue)
    revenue[missing] = guishang_revenue(int(missing.sum()), params.leader_threshold_cny, params, rng)
    return pd.DataFrame(
        {
            "track": [TRACK_IDS.index(t) for t in table["track"]],
            "revenue": revenue,
            "cell": [geo.anchor_cells[a] for a in table["id"]],
            "born": founded,
            "anchor": np.arange(len(table)),
            "id": table["id"],
        }
    )


def _synthetic_firms(n_anchor: int, anchor_revenue: np.ndarray, params: Params, year: float, rng: np.random.Generator) -> pd.DataFrame:
    """Non-anchor firms: the rest of the 规上 count from the Pareto tail, the others below the threshold."""
    total = max(0, round(params.scale * params.firms_full) - n_anchor)
    above = int((anchor_revenue >= params.guishang_threshold_cny).sum())
    guishang = min(total, max(0, round(params.scale * params.guishang_firms) - above))
    revenue = np.concatenate(
        [guishang_revenue(guishang, params.guishang_threshold_cny, params, rng), startup_revenue(total - guishang, params, rng)]
    )
    return pd.DataFrame(
        {
            "track": rng.choice(len(TRACK_IDS), size=total, p=TRACK_SHARES),
            "revenue": revenue,
            "cell": -1,
            "born": year - rng.exponential(5.0, total),  # ASSUMPTION: mean firm age of 5 years
            "anchor": -1,
        }
    )


def _add_firms(state: State, table: pd.DataFrame, geo: Geography, params: Params, rng: np.random.Generator, fixed: bool) -> None:
    """Append firms staffed to their labour demand; place the unplaced ones where floor space allows.

    Anchors (``fixed``) keep their HQ cell, whose capacity is raised to hold
    them with room to grow (params.anchor_headroom).
    """
    revenue = table["revenue"].to_numpy()
    employees = np.rint(labour_demand(revenue, params)).astype(np.int32)
    need = floor_need(employees, params)
    cell = table["cell"].to_numpy().astype(np.int64)
    if fixed:
        used = np.bincount(cell, need, minlength=geo.size)
        state.capacity_m2 = np.maximum(state.capacity_m2, state.occupancy_m2 + used * (1.0 + params.anchor_headroom))
        state.occupancy_m2 += used
    else:
        cell = _place(need, state, geo, params, rng)
    state.add_firms(
        track=table["track"].to_numpy(),
        revenue=revenue,
        employees=employees,
        cell=cell,
        born=table["born"].to_numpy(),
        anchor=table["anchor"].to_numpy(),
    )


def _place(need: np.ndarray, state: State, geo: Geography, params: Params, rng: np.random.Generator) -> np.ndarray:
    """Give each firm a district by its share (GDP and population blend), then a cell there by floor space.

    Floor space follows the land layer, so firms land on built-up land and
    never on water.

    Firms that do not fit are re-drawn within their district. One still
    without room after a few rounds is too big for any cell's floor space (a
    heavy-tail draw): it gets a campus, its last drawn cell's capacity raised
    to hold it, as anchors do.
    """
    share = params.gdp_weight * geo.gdp / geo.gdp.sum() + (1.0 - params.gdp_weight) * geo.population / geo.population.sum()
    share = share * (np.bincount(geo.district[geo.district >= 0], state.capacity_m2[geo.district >= 0], minlength=len(share)) > 0)
    share = share / share.sum()  # a district without floor space (a planner's land layer can say so) gets none
    district = rng.choice(len(share), size=len(need), p=share)
    cell = np.full(len(need), -1, np.int64)
    for d in range(len(share)):  # thirteen districts, not agents
        mine = np.flatnonzero(district == d)
        if len(mine):
            cell[mine] = _place_in(np.flatnonzero(geo.district == d), need[mine], state, geo, rng)
    return cell


def _place_in(cells: np.ndarray, need: np.ndarray, state: State, geo: Geography, rng: np.random.Generator) -> np.ndarray:
    """Place firms on the given cells by floor space, re-drawing the ones that do not fit."""
    sampler = WeightedSampler(cells, state.capacity_m2[cells])
    placed = np.full(len(need), -1, np.int64)
    for _ in range(20):
        todo = np.flatnonzero(placed < 0)
        if len(todo) == 0:
            return placed
        draw = sampler.draw(rng, len(todo))
        ok = ration(draw, need[todo], free_m2(state, draw), rng)
        placed[todo[ok]] = draw[ok]
        state.occupancy_m2 += np.bincount(draw[ok], need[todo[ok]], minlength=geo.size)
    todo = np.flatnonzero(placed < 0)
    placed[todo] = sampler.draw(rng, len(todo))
    extra = np.bincount(placed[todo], need[todo], minlength=geo.size)
    state.capacity_m2 = np.maximum(state.capacity_m2, state.occupancy_m2 + extra)
    state.occupancy_m2 += extra
    return placed


def _add_talent(state: State, geo: Geography, params: Params, rng: np.random.Generator) -> None:
    """One talent agent per job, plus seekers; homes by rent and commute."""
    firms = state.firms
    employed = np.repeat(np.arange(firms.n), firms.employees)
    seekers = int(round(len(employed) * params.seeker_share / (1.0 - params.seeker_share)))
    employer = np.concatenate([employed, np.full(seekers, -1)]).astype(np.int32)
    homes = WeightedSampler(np.flatnonzero(geo.housing > 0), geo.housing[geo.housing > 0])
    work = np.where(employer >= 0, firms.cell[np.maximum(employer, 0)], -1)
    skill = draw_skill(len(employer), params, rng)
    wage = np.where(employer >= 0, wage_offer(firms.revenue, params)[np.maximum(employer, 0)] * skill, 0.0)
    home = choose_homes(work, state, geo, params, homes, rng)
    state.talent.append(skill=skill, home=home, firm=employer, wage=wage)
    add_at(state.residents, home, 1)


def _add_compute(state: State, geo: Geography, stack: LayerStack) -> None:
    """Compute centres from the stack's compute_centres table (gis_data/compute_centres.csv, sourced)."""
    path, table = stack.files["compute_centres"], stack.compute_centres
    unknown = sorted(set(table["anchor_id"]) - set(geo.anchor_cells))
    if unknown:
        raise InputError(path, "anchor_id", f"anchor(s) {', '.join(unknown)} are not in the anchors layer")
    state.compute.append(
        pflops=table["pflops"].astype(float).to_numpy(),
        cell=np.array([geo.anchor_cells[a] for a in table["anchor_id"]]),
        online=table["online_year"].astype(float).to_numpy(),
    )
