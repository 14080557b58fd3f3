"""Rule by rule, the engine's update of each firm and worker equals the per-agent reference's, draw for draw.

The engine runs two months of a small city with every lever on (compute
vouchers, model subsidies, the vision fund and its funding stock, smart_om,
compute build-out, parks, talent) and raised event rates, so every process
acts on many agents. Its processes are wrapped to keep a copy of the state
before and after each one. For each process the reference model
(twin/simulation/reference*.py, written from the documented formulas) is
loaded with the engine's state before it, takes the engine's keyed draws for
the same agents and month (or, for the levers, the same Mesa ``rng``), and
must produce the engine's state after it: the same firms and workers, each
with the same revenue, policy stock, cell, employer, wage and home, to float
tolerance. A one-line change to a rule (a sign, a term, a weight) changes some
agent's update and fails the test of that rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import mesa
import numpy as np
import pytest

import twin.simulation.model as engine_model
from twin.engine.firms import exit_hazard
from twin.engine.params import Params
from twin.engine.state import State
from twin.model import VisionValleyModel
from twin.policy import scenario
from twin.simulation.reference import ReferenceModel
from twin.simulation.reference_agents import Firm
from twin.simulation.reference_draws import KeyedDraws
from twin.simulation.reference_levers import Policy, apply_levers

CITY = {"scale": 0.005, "anchors": 0}
RATES = {"exit_rate": 0.6, "birth_rate": 0.1, "relocation_rate": 1.0, "quit_rate": 1.0, "home_move_rate": 1.0, "industry_far": 0.01}
LEVERS = [
    {"kind": "compute_vouchers"},
    {"kind": "model_subsidies", "specialised_per_year": 1000},
    {"kind": "vision_fund", "ticket_cny": 2e5},
    {"kind": "compute_buildout"},
    {"kind": "parks", "parks": [{"anchor": "iot_town_binjiang", "year": 2024}, {"anchor": "future_sci_city", "year": 2024}]},
    {"kind": "talent"},
    {"kind": "smart_om", "contracts_per_year": 4000, "contract_cny": 1e5, "min_revenue_cny": 0},
]
REPLAY = {
    "update_compute": lambda ref, draws: ref.update_compute(),
    "step_talent": ReferenceModel.talent_stage,
    "grow_firms": ReferenceModel.grow_firms,
    "exit_firms": ReferenceModel.exit_firms,
    "found_firms": ReferenceModel.found_firms,
    "relocate_firms": ReferenceModel.relocate_firms,
    "update_land": lambda ref, draws: ref.update_land(),
}
"""The reference's counterpart of each engine process the tests wrap (twin/simulation/model.py calls them by these names)."""
MONTHS = 2
RTOL = 1e-9


@dataclass
class Month:
    """One engine month: the state before it, the levers' generator, and the state around each process."""

    start: State
    rng: np.random.Generator
    index: int
    before: dict[str, State] = field(default_factory=dict)
    after: dict[str, State] = field(default_factory=dict)
    effects: object = None


def _spec() -> scenario.Scenario:
    """The baseline's first simulated year with every lever kind acting in its first month."""
    return scenario.Scenario.model_validate({**scenario.load(scenario.BASELINE).model_dump(), "years": {"start": 2023, "end": 2024}, "levers": LEVERS})


@pytest.fixture(scope="module")
def run(stack) -> tuple[VisionValleyModel, list[Month]]:
    """The engine's months, each process's state recorded around it."""
    model = VisionValleyModel(_spec(), seed=5, stack=stack, **CITY, **RATES)
    months: list[Month] = []
    with pytest.MonkeyPatch.context() as patch:
        for name in REPLAY:
            patch.setattr(engine_model, name, _recording(getattr(engine_model, name), name, months))
        for _ in range(MONTHS):
            months.append(Month(copy.deepcopy(model.state), copy.deepcopy(model.rng), round(model.year * 12)))
            model.step()
    return model, months


def _recording(process, name: str, months: list[Month]):  # noqa: ANN001, ANN202
    """The engine process, keeping copies of the state before and after it (and the month's policy channels)."""

    def wrapper(state, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        month = months[-1]
        month.before[name] = copy.deepcopy(state)
        out = process(state, *args, **kwargs)
        month.after[name] = copy.deepcopy(state)
        if name == "step_talent":
            month.effects = copy.deepcopy(args[2])
        return out

    return wrapper


def _policy(model: VisionValleyModel, month: Month) -> tuple[ReferenceModel, Policy]:
    """The reference's levers applied to the state the engine's levers saw, drawing from the same generator state."""
    ref = ReferenceModel.mirror(month.start, model.geo, model.params, model.start_year, levers=model.levers, rng=copy.deepcopy(month.rng))
    return ref, apply_levers(ref, ref.levers)


def _mirror(model: VisionValleyModel, month: Month, process: str) -> ReferenceModel:
    """The reference holding the engine's state just before ``process``, with the reference's own policy of the month;
    for the firm processes after growth, with the fields the engine took before growth."""
    _, policy = _policy(model, month)
    ref = ReferenceModel.mirror(month.before[process], model.geo, model.params, model.start_year, policy=policy)
    if process in ("grow_firms", "found_firms", "relocate_firms"):
        fields = ReferenceModel.mirror(month.before["grow_firms"], model.geo, model.params, model.start_year)
        fields.compute_fields()
        for name in ("density", "density_mean", "access", "self_weight", "employment", "employment_all", "per_km2"):
            setattr(ref, name, getattr(fields, name))
    return ref


def _replay(run, m: int, process: str) -> tuple[ReferenceModel, State]:  # noqa: ANN001
    """The reference's own update of one process of month ``m``, made from the engine's state before it with the
    engine's keyed draws, and the engine's state after it."""
    model, months = run
    month = months[m]
    ref = _mirror(model, month, process)
    REPLAY[process](ref, KeyedDraws(model.streams, month.index))
    return ref, month.after[process]


def _firms(state: State) -> dict[int, int]:
    """Row of each live firm by stable id."""
    f = state.firms
    return {int(f.uid[r]): int(r) for r in np.flatnonzero(f.alive)}


def _workers(state: State) -> dict[int, int]:
    """Row of each live worker by stable id."""
    t = state.talent
    return {int(t.uid[r]): int(r) for r in np.flatnonzero(t.alive)}


MONTH_IDS = [f"month{i + 1}" for i in range(MONTHS)]


# --- levers -------------------------------------------------------------------------------
@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
@pytest.mark.parametrize("channel", ["growth", "funding", "sales", "lasting"])
def test_lever_channels_per_firm(run, m, channel):
    """Compute adopters and parks (growth), vouchers, model subsidies and the fund (funding), smart_om contracts
    (sales, and lasting for young winners): each firm's channel."""
    model, months = run
    month = months[m]
    _, policy = _policy(model, month)
    engine = getattr(month.effects, channel)
    rows = _firms(month.start)
    ours = np.array([getattr(policy, channel).get(uid, 0.0) for uid in rows])
    theirs = engine[list(rows.values())]
    np.testing.assert_allclose(theirs, ours, rtol=RTOL, atol=0)
    if channel == "growth" or m == 0:  # subsidies and contracts come in January; a quiet fund month is possible later
        assert np.count_nonzero(ours) >= 2, f"no firm got any {channel}: the test would prove nothing"


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_lever_flows_zones_and_spend(run, m):
    """Talent (inflow, retention), the fund and parks (zone appeal), and every lever's spend."""
    model, months = run
    month = months[m]
    _, policy = _policy(model, month)
    e = month.effects
    assert (e.talent_inflow, e.talent_retention, e.births) == pytest.approx((policy.talent_inflow, policy.talent_retention, policy.births), rel=RTOL)
    assert policy.talent_inflow != 1.0 and policy.talent_retention != 1.0
    np.testing.assert_allclose(e.zone_appeal, policy.zone_appeal, rtol=RTOL)
    assert np.count_nonzero(policy.zone_appeal) >= 2
    for label in set(e.spend) | set(policy.spend):
        assert e.spend.get(label, 0.0) == pytest.approx(policy.spend.get(label, 0.0), rel=1e-9, abs=1e-6), label


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_parks_and_compute_buildout_change_the_land_and_the_compute(run, m):
    """Parks spread their floor space over the cells in reach; a compute site comes online at its anchor."""
    model, months = run
    month = months[m]
    ref, _ = _policy(model, month)
    engine = month.before["update_compute"]
    np.testing.assert_allclose(engine.capacity_m2, ref.capacity, rtol=1e-12)
    c = engine.compute
    assert [(float(c.pflops[r]), int(c.cell[r]), float(c.online[r])) for r in np.flatnonzero(c.alive)] == ref.compute
    if m == 0:
        assert not np.array_equal(month.start.capacity_m2, ref.capacity) and len(ref.compute) > month.start.compute.count


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_compute_price(run, m):
    """The compute price index after build-out and growth: (demand/supply over the base year's)^elasticity."""
    ref, after = _replay(run, m, "update_compute")
    assert after.compute_price == pytest.approx(ref.compute_price, rel=1e-6)


# --- talent -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def talent(run) -> list[tuple[ReferenceModel, State]]:
    """Each month's talent stage by the reference, from the engine's state before it and with its keyed draws."""
    return [_replay(run, m, "step_talent") for m in range(MONTHS)]


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_separations_leaving_and_arrivals(talent, m):
    """The same workers stay, leave and arrive (talent lever: inflow and retention), with the same skills."""
    ref, engine = talent[m]
    rows = _workers(engine)
    assert sorted(rows) == sorted(w.uid for w in ref.workers)
    np.testing.assert_allclose([engine.talent.skill[rows[w.uid]] for w in ref.workers], [w.skill for w in ref.workers], rtol=1e-6)
    assert ref.log.talent_in > 5 and ref.log.talent_out > 5


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_job_choice_and_wages(talent, m):
    """Every worker has the same employer (choice among sampled vacancies, rationed by openings and desks) and wage."""
    ref, engine = talent[m]
    rows, uid_of_row = _workers(engine), engine.firms.uid
    employer = {w.uid: (w.firm.uid if w.firm else -1) for w in ref.workers}
    theirs = {uid: (int(uid_of_row[engine.talent.firm[r]]) if engine.talent.firm[r] >= 0 else -1) for uid, r in rows.items()}
    assert theirs == employer
    np.testing.assert_allclose([engine.talent.wage[rows[w.uid]] for w in ref.workers], [w.wage for w in ref.workers], rtol=1e-6)
    assert ref.log.hires > 20


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_home_choice(talent, m):
    """Every worker lives in the same cell (movers and newcomers: logit over rent, metro and commute)."""
    ref, engine = talent[m]
    rows = _workers(engine)
    assert {w.uid: w.home for w in ref.workers} == {uid: int(engine.talent.home[r]) for uid, r in rows.items()}


# --- firms --------------------------------------------------------------------------------
@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_growth_with_funding_stock(run, m):
    """Every firm's revenue, policy stock, contract sales and funding received after a month of growth."""
    ref, after = _replay(run, m, "grow_firms")
    rows = [_firms(after)[f.uid] for f in ref.firms]
    np.testing.assert_allclose(after.firms.revenue[rows], [f.revenue for f in ref.firms], rtol=RTOL)
    np.testing.assert_allclose(after.firms.policy_stock[rows], [f.stock for f in ref.firms], rtol=RTOL)
    np.testing.assert_allclose(after.firms.policy_sales[rows], [f.contract for f in ref.firms], rtol=RTOL)
    np.testing.assert_allclose(after.firms.funding[rows], [f.received for f in ref.firms], rtol=1e-6)
    assert sum(f.stock > 0 for f in ref.firms) >= 2 and sum(f.contract > 0 for f in ref.firms) >= 2


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_exit(run, m):
    """The same firms close: each firm's keyed uniform against its hazard (size, age, shield)."""
    ref, after = _replay(run, m, "exit_firms")
    assert sorted(_firms(after)) == sorted(f.uid for f in ref.firms)
    assert ref.log.firm_exits >= 5


@pytest.mark.parametrize("age", [0.0, 0.5, 1.0, 2.0, 5.0, 20.0])
def test_exit_hazard_by_age_and_size(age):
    """The engine's hazard at several ages and sizes (1 k to 100 亿, past the shield) equals the stated formula."""
    holder = mesa.Model(seed=0)
    holder.params = Params().with_overrides({"exit_shield_cny": 2e9})
    revenue = [1e3, 1e5, 1e6, 2e7, 1e9, 1e10]
    ours = [Firm(holder, 0, 0, r, 0, 2024.0 - age, -1).exit_hazard(2024.0) for r in revenue]
    np.testing.assert_allclose(exit_hazard(np.array(revenue), np.full(len(revenue), age), holder.params), ours, rtol=1e-12)


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_births(run, m):
    """The same start-ups: ids, tracks, sites (logit over cells sampled by floor space, zone appeal), revenues."""
    before = set(_firms(run[1][m].before["found_firms"]))
    ref, after = _replay(run, m, "found_firms")
    born = [f for f in ref.firms if f.uid not in before]
    rows = _firms(after)
    assert sorted(set(rows) - before) == sorted(f.uid for f in born)
    f = after.firms
    assert [(int(f.track[rows[b.uid]]), int(f.cell[rows[b.uid]])) for b in born] == [(b.track, b.cell) for b in born]
    np.testing.assert_allclose([f.revenue[rows[b.uid]] for b in born], [b.revenue for b in born], rtol=RTOL)
    assert len(born) >= 5


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_relocation(run, m):
    """Every firm is in the same cell after relocation (own cell and sampled others, zone appeal, rationing)."""
    ref, after = _replay(run, m, "relocate_firms")
    rows = _firms(after)
    assert {f.uid: f.cell for f in ref.firms} == {uid: int(after.firms.cell[r]) for uid, r in rows.items()}
    assert ref.log.relocations >= 5


@pytest.mark.parametrize("m", range(MONTHS), ids=MONTH_IDS)
def test_rent(run, m):
    """Rent after the month: base x (1 + elasticity x occupancy / capacity)."""
    ref, after = _replay(run, m, "update_land")
    np.testing.assert_allclose(after.rent, ref.rent, rtol=1e-6)


# --- the whole month ----------------------------------------------------------------------
def test_keyed_reference_follows_the_engine(stack):
    """Given the engine's keyed draws (and, for the levers, the same Mesa rng), the whole reference model follows
    the engine month after month: every firm's revenue, stock, cell and payroll, every worker's employer, wage and home."""
    ref = ReferenceModel(_spec(), seed=7, stack=stack, keyed=True, **CITY, **RATES)
    engine = VisionValleyModel(_spec(), seed=7, stack=stack, **CITY, **RATES)
    for _ in range(3):
        ref.step()
        engine.step()
    firms, talent = engine.state.firms, engine.state.talent
    rows = _firms(engine.state)
    assert [x.uid for x in ref.firms] == list(rows)
    table = [(x.track, x.cell, x.employees) for x in ref.firms]
    assert table == [(int(firms.track[r]), int(firms.cell[r]), int(firms.employees[r])) for r in rows.values()]
    np.testing.assert_allclose(firms.revenue[list(rows.values())], [x.revenue for x in ref.firms], rtol=1e-8)
    np.testing.assert_allclose(firms.policy_stock[list(rows.values())], [x.stock for x in ref.firms], rtol=1e-8)
    np.testing.assert_allclose(firms.policy_sales[list(rows.values())], [x.contract for x in ref.firms], rtol=1e-8)
    workers = _workers(engine.state)
    assert [w.uid for w in ref.workers] == list(workers)
    people = [(w.firm.uid if w.firm else -1, w.home) for w in ref.workers]
    assert people == [(int(firms.uid[talent.firm[r]]) if talent.firm[r] >= 0 else -1, int(talent.home[r])) for r in workers.values()]
    np.testing.assert_allclose(talent.wage[list(workers.values())], [w.wage for w in ref.workers], rtol=1e-6)
    assert ref.log.firm_births and ref.log.firm_exits and ref.log.relocations and ref.log.hires
