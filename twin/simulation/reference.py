"""The per-agent reference model: the engine's rules written one agent at a time.

This is the specification researchers read and the oracle the tests compare
the vectorized engine against. It is slow on purpose: every firm and worker
is a ``mesa.Agent`` whose methods state a rule in plain Python
(:mod:`.reference_agents`; the talent stage in :mod:`.reference_talent`, the
levers in :mod:`.reference_levers`), written from the documented formulas
rather than imported from the engine, so a wrong engine rule is not mirrored
in its oracle. What it shares with the engine is data, not rules: the
parameters and track tables, the lever objects' fields, the grid with its
Gaussian smoothing, the state's table format and the base-year synthesis. It
starts from the same synthesized base year as :class:`twin.model.VisionValleyModel` (same seed, same
population), runs the scenario's levers with the funding stock, and follows
the same monthly order:

    policy -> infrastructure -> talent -> firms -> land -> metrics

Where scarce things (a firm's openings, a cell's floor space) are shared
out, the rule is the same in both models: requests are served in random
order, and once a request does not fit, the cell turns away the rest of the
month's requests (so a small later request cannot jump a refused larger one).

Chance comes through :mod:`.reference_draws`. By default the model draws from
its own seeded ``rng``, one draw at a time, so it agrees with the engine in
distribution, not draw for draw (tests/test_reference.py). Given ``keyed=True``
it takes the engine's keyed streams (seed, process, month, agent id) and the
levers draw from the same Mesa ``rng``, so it agrees with the engine draw for
draw; :meth:`ReferenceModel.mirror` loads an engine state at any point of a
month, so tests/test_rules.py compares one process's update agent by agent.
The clock is the engine's: ``year`` is the decimal date at the start of the
month simulated next.
"""

from __future__ import annotations

import math
import os
from typing import Any

import mesa
import numpy as np

import layers
from layers import LayerStack

from ..engine.geography import Geography
from ..engine.params import TRACK_FIRM_SHARES, TRACK_IDS, TRACKS, Params
from ..engine.state import State, StepLog
from ..engine.streams import Streams
from ..engine.synth import synthesize
from ..policy import scenario as scenarios
from .reference_agents import MONTH, Firm, Worker, gumbel, pick, running_shares, startup_revenue
from .reference_draws import Draws, KeyedDraws, SeededDraws
from .reference_levers import Policy, apply_levers
from .reference_talent import Request, TalentStage, ration


class ReferenceModel(TalentStage, mesa.Model):
    """The same model as :class:`twin.model.VisionValleyModel`, one agent at a time.

    Args as the engine's (``levers``: ``None`` for the scenario's, ``[]`` for none); ``keyed``
    takes the engine's keyed draws instead of the model's own.
    """

    def __init__(
        self,
        scenario: str | os.PathLike[str] | scenarios.Scenario | None = None,
        seed: int | None = None,
        *,
        stack: LayerStack | None = None,
        levers: list[Any] | None = None,
        keyed: bool = False,
        **params: Any,
    ) -> None:
        spec = scenario if isinstance(scenario, scenarios.Scenario) else scenarios.load(scenario or scenarios.BASELINE)
        self.seed = int(spec.seed if seed is None else seed)
        super().__init__(seed=self.seed)
        params = spec.parameters(**params)
        self.layers = stack if stack is not None else layers.load(**spec.layer_arguments())
        geo = Geography.from_layers(self.layers, params)
        base = synthesize(geo, params, float(spec.years.start), self.rng, self.layers)
        base.talent.uid = np.arange(base.talent.n)  # base-year ids, as the engine's
        base.year = spec.years.start + 1.0
        self._load(base, geo, params, spec.years.start, list(spec.levers if levers is None else levers))
        self.end_year = spec.years.end
        self.base_compute_ratio = self._compute_ratio()
        self.compute_price = 1.0
        self.streams = Streams(self.seed) if keyed else None
        self.running = self.end_year > self.start_year

    @classmethod
    def mirror(cls, state: State, geo: Geography, params: Params, start_year: int, *, levers: list[Any] = (),
               policy: Policy | None = None, rng: np.random.Generator | None = None) -> ReferenceModel:
        """A reference holding a copy of an engine state (its live rows, in row order), e.g. between two processes
        of a month; ``rng`` is the generator the levers draw from, ``policy`` this month's if the levers have run."""
        model = cls.__new__(cls)
        mesa.Model.__init__(model, seed=0)
        model.rng = rng if rng is not None else model.rng
        model._load(state, geo, params, start_year, list(levers))
        model.base_compute_ratio, model.compute_price = state.base_compute_ratio, state.compute_price
        model.policy = policy if policy is not None else model.policy
        model.streams = None
        return model

    def _load(self, state: State, geo: Geography, params: Params, start_year: int, levers: list[Any]) -> None:
        """Agents and land from an engine-format state (the synthesized base year, or a state mid-run)."""
        self.params, self.geo, self.levers, self.start_year, self.end_year = params, geo, levers, start_year, start_year
        self.year = float(state.year)
        self.density_reference = state.density_reference  # nan until the first month's growth sets it
        self.capacity, self.rent = state.capacity_m2.copy(), state.rent.copy()
        c = state.compute
        self.compute = [(float(c.pflops[r]), int(c.cell[r]), float(c.online[r])) for r in np.flatnonzero(c.alive)]
        f, t = state.firms, state.talent
        by_row = {}
        for r in np.flatnonzero(f.alive):
            by_row[r] = Firm(self, int(f.uid[r]), int(f.track[r]), float(f.revenue[r]), int(f.cell[r]), float(f.born[r]),
                             int(f.anchor[r]), float(f.policy_stock[r]), float(f.funding[r]), float(f.density_level[r]),
                             float(f.policy_sales[r]))
        self.firms = list(by_row.values())
        self.workers = []
        for r in np.flatnonzero(t.alive):
            worker = Worker(self, int(t.uid[r]), float(t.skill[r]), int(t.home[r]))
            if t.firm[r] in by_row:
                worker.firm, worker.wage = by_row[t.firm[r]], float(t.wage[r])
                worker.firm.workers.add(worker)
            self.workers.append(worker)
        self._home_cells = [int(c) for c in np.flatnonzero(geo.housing > 0)]
        self._home_cdf = running_shares([float(geo.housing[c]) for c in self._home_cells])
        self.self_weight: float | None = None
        self._site_cdf: tuple[list[int], list[float]] | None = None  # site cells and their running floor-space shares
        self.policy = Policy([0.0] * len(geo.zone_ids))
        self.log = StepLog()
        self._seeded = SeededDraws(self.rng, first_id=1 << 62)  # newborn ids above any the engine gives

    # --- the month ----------------------------------------------------------------
    def draws(self) -> Draws:
        """This month's draws: the engine's keyed streams (keyed=True) or the model's own."""
        return KeyedDraws(self.streams, round(self.year * 12)) if self.streams else self._seeded.at(round(self.year * 12))

    def step(self) -> None:
        """One month, in the engine's order; ``log`` counts its events as the engine's does."""
        self.log = StepLog()
        draws = self.draws()
        self.policy = apply_levers(self, self.levers)
        self.update_compute()
        self.talent_stage(draws)
        self.compute_fields()
        self.grow_firms(draws)
        self.exit_firms(draws)
        self.found_firms(draws)
        self.relocate_firms(draws)
        self.update_land()
        self.year = self.start_year + 1.0 + self.steps / 12.0
        if self.year >= self.end_year + 1 - 1e-9:
            self.running = False

    def update_compute(self) -> None:
        """Compute price index: (demand/supply over the base year's)^elasticity, within [1/cap, cap]."""
        p = self.params
        price = (self._compute_ratio() / self.base_compute_ratio) ** p.compute_price_elasticity
        self.compute_price = min(max(price, 1.0 / p.compute_price_cap), p.compute_price_cap)

    def _compute_ratio(self) -> float:
        """Compute demand over the supply online now."""
        demand = sum(f.compute_pflops() for f in self.firms)
        supply = sum(pf for pf, _, online in self.compute if online <= self.year + 1e-6)
        return max(demand, 1e-9) / max(supply, 1e-9)

    def compute_fields(self) -> None:
        """Same-track revenue, employment by track and talent by home, binned on the coarse grid and smoothed; agglomeration
        and talent access are log(1 + value / city mean), the mean over the coarse cells that overlap the city."""
        geo, p = self.geo, self.params
        revenue, workers = np.zeros((len(TRACKS), geo.coarse_size)), np.zeros((len(TRACKS), geo.coarse_size))
        for firm in self.firms:
            revenue[firm.track, geo.coarse_of[firm.cell]] += firm.revenue
            workers[firm.track, geo.coarse_of[firm.cell]] += self.staff(firm)
        people = np.zeros((1, geo.coarse_size))
        for worker in self.workers:
            people[0, geo.coarse_of[worker.home]] += 1
        self.density = geo.smooth(revenue, p.agglomeration_radius_m)
        self.density_mean = self.density[:, geo.coarse_city].mean(axis=1)
        self.employment = geo.smooth(workers, p.agglomeration_radius_m)
        self.employment_all = self.employment.sum(axis=0)
        self.per_km2 = 1.0 / (p.scale * (geo.coarse_factor * geo.cell_m / 1000.0) ** 2)  # full-city workers per km²
        talent = geo.smooth(people, p.talent_radius_m)[0]
        mean = talent[geo.coarse_city].mean()
        self.access = np.log1p(talent / mean) if mean > 0 else np.zeros_like(talent)
        if self.self_weight is None:  # the kernel's weight of a cell on itself: a unit impulse smoothed, read where it was
            impulse = np.zeros((1, geo.coarse_size))
            centre = (geo.coarse_shape[0] // 2) * geo.coarse_shape[1] + geo.coarse_shape[1] // 2
            impulse[0, centre] = 1.0
            self.self_weight = float(geo.smooth(impulse, p.agglomeration_radius_m)[0, centre])

    def agglomeration(self, track: int, cell: int, own: float = 0.0) -> float:
        """Same-track agglomeration at a cell, without ``own`` revenue's share of it (location choice)."""
        mean = self.density_mean[track]
        return math.log1p(max(self.density[track, self.geo.coarse_of[cell]] - own * self.self_weight, 0.0) / mean) if mean > 0 else 0.0

    def staff(self, firm: Firm) -> float:
        """The firm's workers as the scaled city counts them in densities: an anchor (full size at any scale) times the scale."""
        return firm.employees * (self.params.scale if firm.anchor >= 0 else 1.0)

    def talent_pool(self) -> float:
        """The talent births and in-migration are proportional to: every worker, an anchor's (full size at any scale)
        counted at the city's scale."""
        if self.params.scale >= 1:
            return float(len(self.workers))
        anchored = sum(1 for worker in self.workers if worker.firm is not None and worker.firm.anchor >= 0)
        return (len(self.workers) - anchored) + self.params.scale * anchored

    def density_level(self, firm: Firm) -> float:
        """A firm's log productivity from the density of the others around it: urbanisation_elasticity x log(all tracks'
        employment density + floor) + localisation_elasticity x log(its track's + floor), in full-city workers per km²,
        its own smoothed workers (Model.staff) taken out."""
        p, coarse = self.params, self.geo.coarse_of[firm.cell]
        own = self.staff(firm) * self.self_weight

        def log_density(smoothed: float) -> float:
            return math.log(max(smoothed - own, 0.0) * self.per_km2 + p.density_floor_km2)

        return (p.urbanisation_elasticity * log_density(self.employment_all[coarse])
                + p.localisation_elasticity * log_density(self.employment[firm.track, coarse]))

    def grow_firms(self, draws: Draws) -> None:
        """Every firm grows (Firm.grow) with its talent access relative to the revenue-weighted city average and its
        density level, both taken before anybody grows. In the first month the firms hold their level already (their
        revenue is the base year's), and the employment-weighted mean level becomes the newborns' (``density_reference``)."""
        levels = [self.density_level(f) for f in self.firms]
        if math.isnan(self.density_reference):
            for firm, level in zip(self.firms, levels):
                firm.level = level
            workers = sum(self.staff(f) for f in self.firms)
            self.density_reference = sum(self.staff(f) * level for f, level in zip(self.firms, levels)) / workers if workers else 0.0
        access = [float(self.access[self.geo.coarse_of[f.cell]]) for f in self.firms]
        mean = sum(f.revenue * a for f, a in zip(self.firms, access)) / sum(f.revenue for f in self.firms)
        for firm, level, a in zip(self.firms, levels, access):
            variance = -math.log(draws.uniform_of_year("grow_variance", firm.uid))  # exponential, by inverse CDF
            firm.grow(a - mean, level, draws.normal("grow", firm.uid), variance)

    def exit_firms(self, draws: Draws) -> None:
        """Firms close by their hazard (Firm.exits); their workers become seekers."""
        closed = [f for f in self.firms if f.exits(self.year, draws.uniform("exit", f.uid))]
        for firm in closed:
            for worker in list(firm.workers):
                self._unemploy(worker)
            self.firms.remove(firm)
            firm.remove()
        self.log.firm_exits = len(closed)

    def location_utility(self, cell: int, track: int) -> float:
        """How much a firm of this track likes a cell: its track nearby, talent, rent, universities, metro, zone policy."""
        p, geo = self.params, self.geo
        zone = int(geo.zone[cell])
        return (
            p.location_agglomeration * self.agglomeration(track, cell)
            + p.location_talent * float(self.access[geo.coarse_of[cell]])
            - p.location_rent * math.log(self.rent[cell])
            + p.university_weight * geo.pull[cell]
            + p.metro_weight_firm * geo.metro_access[cell]
            + (self.policy.zone_appeal[zone] if zone >= 0 else 0.0)
        )

    def best_cell(self, cells: list[int], track: int, feasible: list[bool], uniforms: list[float]) -> int:
        """Position of the Gumbel-max logit pick among candidate cells; infeasible ones cannot win unless all are."""
        utility = [(self.location_utility(c, track) if ok else -math.inf) + gumbel(u) for c, ok, u in zip(cells, feasible, uniforms)]
        return max(range(len(cells)), key=lambda j: (utility[j], -j))

    def found_firms(self, draws: Draws) -> None:
        """Start-ups in proportion to the talent pool: a track by the firm shares, the logit pick among cells sampled by
        floor space that have a desk free, rationed per cell; a revenue from the truncated start-up lognormal."""
        p = self.params
        n = draws.poisson("births", p.birth_rate * MONTH * self.talent_pool() * self.policy.births)
        need, free = p.floor_m2_per_worker, self.free_m2()
        shares = list(np.cumsum([TRACK_FIRM_SHARES[t] for t in TRACK_IDS]))
        requests = []
        for uid in draws.newborn_ids(n):
            track = min(int(np.searchsorted(shares, draws.uniform("birth_track", uid))), len(TRACK_IDS) - 1)
            cells = self.site_candidates(draws.uniforms("birth_cells", uid, p.candidates))
            feasible = [free(c) >= need for c in cells]
            j = self.best_cell(cells, track, feasible, draws.uniforms32("birth_noise", uid, p.candidates))
            if feasible[j]:
                requests.append(Request(cells[j], need, uid, (uid, track, cells[j])))
        for uid, track, cell in ration(requests, free, draws, "birth_order"):
            revenue = startup_revenue(draws.uniform("birth_revenue", uid), p)
            born = float(np.float32(self.year))  # the founding year as the state's table keeps it (float32): ages set growth
            self.firms.append(Firm(self, uid, track, revenue, cell, born, -1, level=self.density_reference))
            self.log.firm_births += 1

    def relocate_firms(self, draws: Draws) -> None:
        """A share of firms (not anchors) re-choose among their own cell and sampled others; moves are rationed per cell."""
        p = self.params
        p_move = 1.0 - math.exp(-p.relocation_rate * MONTH)
        free = self.free_m2()
        requests = []
        for firm in self.firms:
            if firm.anchor >= 0 or draws.uniform("relocate", firm.uid) >= p_move:
                continue
            need = firm.floor_need()
            cells = [firm.cell, *self.site_candidates(draws.uniforms("relocate_cells", firm.uid, p.candidates))[1:]]
            feasible = [free(c) + (need if c == firm.cell else 0.0) >= need for c in cells]
            dest = cells[self.best_cell(cells, firm.track, feasible, draws.uniforms32("relocate_noise", firm.uid, p.candidates))]
            if dest != firm.cell:
                requests.append(Request(dest, need, firm.uid, (firm, dest)))
        for firm, dest in ration(requests, free, draws, "relocate_order"):
            firm.cell = dest
            self.log.relocations += 1

    def update_land(self) -> None:
        """Rent responds to occupancy: base x (1 + elasticity x occupancy / capacity); no rise without floor space."""
        occupancy = self.occupancy()
        use = np.divide(occupancy, self.capacity, out=np.zeros_like(occupancy), where=self.capacity > 0)
        self.rent = (self.geo.base_rent * (1.0 + self.params.rent_occupancy_elasticity * use)).astype(np.float32)

    # --- helpers --------------------------------------------------------------------
    def site_candidates(self, uniforms: list[float]) -> list[int]:
        """Candidate firm sites: cells drawn in proportion to floor space."""
        if self._site_cdf is None:
            cells = [int(c) for c in np.flatnonzero(self.capacity > 0)]
            self._site_cdf = (cells, running_shares([float(self.capacity[c]) for c in cells]))
        cells, cdf = self._site_cdf
        return [cells[pick(cdf, u)] for u in uniforms]

    def add_floor(self, cell: int, m2: float) -> None:
        """New floor space in a cell (a park); site candidates are drawn by the new floor space from now on."""
        self.capacity[cell] += m2
        self._site_cdf = None

    def distance_km(self, a: int, b: int) -> float:
        """Straight-line km between cell centres."""
        cols, km = self.geo.shape[1], self.geo.cell_m / 1000.0
        (ra, ca), (rb, cb) = divmod(a, cols), divmod(b, cols)
        return math.hypot((ca - cb) * km, (ra - rb) * km)

    def cells_around(self, centre: int, radius_m: float) -> list[int]:
        """The cells of the square of half-side ``radius_m`` around a cell (a superset of those within the radius)."""
        rows, cols = self.geo.shape
        reach = math.ceil(radius_m / self.geo.cell_m) + 1
        r0, c0 = divmod(centre, cols)
        return [r * cols + c for r in range(max(r0 - reach, 0), min(r0 + reach + 1, rows))
                for c in range(max(c0 - reach, 0), min(c0 + reach + 1, cols))]

    def occupancy(self) -> np.ndarray:
        """Floor space in use per cell."""
        occupancy = np.zeros(self.geo.size)
        for firm in self.firms:
            occupancy[firm.cell] += firm.floor_need()
        return occupancy

    def free_m2(self) -> Any:
        """Free floor space by cell now, as a function of the cell."""
        occupancy = self.occupancy()
        return lambda cell: max(float(self.capacity[cell] - occupancy[cell]), 0.0)

    @property
    def figures(self) -> dict[str, float]:
        """Headline figures, as the engine reports them."""
        return {
            "year": self.year,
            "revenue_cny": sum(f.revenue for f in self.firms),
            "firms": float(len(self.firms)),
            "talent": float(len(self.workers)),
            "employed": float(sum(1 for w in self.workers if w.firm is not None)),
        }

    def firm_table(self) -> dict[str, np.ndarray]:
        """Live firms' revenue and cell as arrays, for comparisons with the engine."""
        return {
            "revenue": np.array([f.revenue for f in self.firms]),
            "cell": np.array([f.cell for f in self.firms], dtype=np.int64),
        }
