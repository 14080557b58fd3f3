"""The per-agent reference model: the engine's rules written one agent at a time.

This is the specification researchers read and the oracle the tests compare
the vectorized engine against. It is slow on purpose: every firm and worker
is a ``mesa.Agent`` whose methods state a rule in plain Python. It starts
from the same synthesized base year as :class:`twin.model.VisionValleyModel`
(same seed, same population) and follows the same monthly order:

    policy -> infrastructure -> talent -> firms -> land -> metrics

Where scarce things (a firm's openings, a cell's floor space) are shared
out, the rule is the same in both models: requests are served in random
order, and once a request does not fit, the cell turns away the rest of the
month's requests (so a small later request cannot jump a refused larger one).

Policy levers act on the vectorized engine only; the reference model runs
without them. Its draws come one at a time from the model's seeded ``rng``,
not from the engine's keyed streams (:mod:`twin.engine.streams`), so the two
agree in distribution, not draw for draw (tests/test_reference.py).
The clock is the engine's: ``year`` is the decimal date at the start of the
month simulated next.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any

import mesa
import numpy as np

import layers
from layers import LayerStack

from ..engine.fields import Fields, city_mean, kernel_self_weight, log_ratio, others_agglomeration
from ..engine.firms import startup_revenue
from ..engine.geography import Geography
from ..engine.params import MONTH, TRACK_COMPUTE_INTENSITY, TRACK_FIRM_SHARES, TRACK_IDS, TRACKS
from ..engine.state import StepLog
from ..engine.synth import synthesize
from ..engine.talent import draw_skill
from ..policy import scenario as scenarios
from .reference_agents import Firm, Worker


class ReferenceModel(mesa.Model):
    """The same model as :class:`twin.model.VisionValleyModel`, one agent at a time."""

    def __init__(
        self,
        scenario: str | os.PathLike[str] | scenarios.Scenario | None = None,
        seed: int | None = None,
        *,
        stack: LayerStack | None = None,
        **params: Any,
    ) -> None:
        spec = scenario if isinstance(scenario, scenarios.Scenario) else scenarios.load(scenario or scenarios.BASELINE)
        super().__init__(seed=spec.seed if seed is None else seed)
        self.params = spec.parameters(**params)
        self.layers = stack if stack is not None else layers.load(**spec.layer_arguments())
        self.geo = Geography.from_layers(self.layers, self.params)
        self.start_year, self.end_year = spec.years.start, spec.years.end
        base = synthesize(self.geo, self.params, float(self.start_year), self.rng, self.layers)
        self.year = self.start_year + 1.0  # the clock: start of the month simulated next
        self.capacity = base.capacity_m2.copy()
        self.rent = base.rent.copy()
        self.compute = [(float(pf), float(on)) for pf, on in zip(base.compute.pflops, base.compute.online)]
        self.firms: list[Firm] = []
        for row in range(base.firms.n):
            f = base.firms
            self.firms.append(Firm(self, int(f.track[row]), float(f.revenue[row]), int(f.cell[row]), float(f.born[row]), int(f.anchor[row])))
        self.workers: list[Worker] = []
        for row in range(base.talent.n):
            t = base.talent
            worker = Worker(self, float(t.skill[row]), int(t.home[row]))
            if t.firm[row] >= 0:
                worker.firm = self.firms[t.firm[row]]
                worker.firm.workers.add(worker)
                worker.wage = float(t.wage[row])
            self.workers.append(worker)
        self._capacity_cdf = np.cumsum(self.capacity)
        self._housing_cdf = np.cumsum(self.geo.housing, dtype=np.float64)
        self.base_compute_ratio = self._compute_ratio()
        self.compute_price = 1.0
        self.log = StepLog()
        self.running = self.end_year > self.start_year

    # --- the month ----------------------------------------------------------------
    def step(self) -> None:
        """One month, in the engine's order; ``log`` counts its events as the engine's does."""
        self.log = StepLog()
        self._update_compute()
        self._talent_stage()
        self._compute_fields()
        offsets = self._drift_offsets()
        for firm in list(self.firms):
            firm.grow(offsets)
        closed = [f for f in self.firms if f.maybe_exit()]
        for firm in closed:
            self._close(firm)
        self.log.firm_exits = len(closed)
        self._found_firms()
        self._relocate_firms()
        self._update_land()
        self.year = self.start_year + 1.0 + self.steps / 12.0
        if self.start_year + self.steps / 12.0 >= self.end_year - 1e-9:
            self.running = False

    def _update_compute(self) -> None:
        """Compute price index: (demand/supply over the base year's)^elasticity, within the cap."""
        p = self.params
        price = (self._compute_ratio() / self.base_compute_ratio) ** p.compute_price_elasticity
        self.compute_price = min(max(price, 1.0 / p.compute_price_cap), p.compute_price_cap)

    def _compute_ratio(self) -> float:
        """Compute demand over the supply online now."""
        p = self.params
        demand = sum(f.revenue / 1e8 * p.compute_pflops_per_100m_cny * TRACK_COMPUTE_INTENSITY[TRACK_IDS[f.track]] for f in self.firms)
        supply = sum(pf for pf, online in self.compute if online <= self.year + 1e-6)
        return max(demand, 1e-9) / max(supply, 1e-9)

    def _talent_stage(self) -> None:
        """Separations, seekers leaving, in-migration for unmet demand, matching, home moves."""
        p = self.params
        p_leave = -math.expm1(-p.leave_rate_employed * MONTH)
        p_quit = -math.expm1(-p.quit_rate * MONTH)
        for worker in list(self.workers):
            if worker.firm is None:
                continue
            outcome = worker.separate(p_leave, p_quit)
            if outcome:
                self._unemploy(worker)
            if outcome == "leave":
                self._remove_worker(worker)
                self.log.talent_out += 1
        p_seek_leave = -math.expm1(-p.leave_rate_seeking * MONTH)
        for worker in [w for w in self.workers if w.firm is None]:
            if self.rng.random() < p_seek_leave:
                self._remove_worker(worker)
                self.log.talent_out += 1
        seekers = [w for w in self.workers if w.firm is None]
        openings = self._open_positions()
        unmet = max(0.0, sum(openings.values()) - len(seekers))
        arrivals = self.rng.poisson(p.inflow_response * unmet + p.inflow_base * MONTH * len(self.workers))
        for _ in range(arrivals):
            worker = Worker(self, float(draw_skill(1, p, self.rng)[0]), self.choose_home(-1))
            self.workers.append(worker)
            seekers.append(worker)
        self.log.talent_in += arrivals
        self._match(seekers, openings)
        p_move = -math.expm1(-p.home_move_rate * MONTH)
        for worker in self.workers:
            if self.rng.random() < p_move:
                worker.choose_home()

    def _open_positions(self) -> dict[Firm, float]:
        """Unfilled labour demand per firm, scaled down where its cell lacks desks."""
        p = self.params
        gap = {f: max(math.ceil(f.labour_demand()) - f.employees, 0) for f in self.firms}
        wanted: dict[int, float] = defaultdict(float)
        for firm, g in gap.items():
            wanted[firm.cell] += g
        occupancy = self._occupancy()
        openings = {}
        for firm, g in gap.items():
            desks = max(self.capacity[firm.cell] - occupancy[firm.cell], 0.0) / p.floor_m2_per_worker
            share = min(1.0, desks / wanted[firm.cell]) if wanted[firm.cell] > 0 else 1.0
            if math.floor(g * share) > 0:
                openings[firm] = math.floor(g * share)
        return openings

    def _match(self, seekers: list[Worker], openings: dict[Firm, float]) -> None:
        """Seekers apply to their logit pick; each firm takes applicants in random order up to its
        openings; then each cell seats the taken hires in random order while desks last."""
        if not seekers or not openings:
            return
        p = self.params
        firms = list(openings)
        weights = np.array([openings[f] for f in firms], dtype=float)
        applicants: dict[Firm, list[Worker]] = defaultdict(list)
        for worker in seekers:
            picks = self.rng.choice(len(firms), size=p.job_candidates, p=weights / weights.sum())
            firm = worker.pick_job([firms[i] for i in picks])
            if firm is not None:
                applicants[firm].append(worker)
        by_cell: dict[int, list[tuple[Worker, Firm]]] = defaultdict(list)
        for firm, people in applicants.items():
            self.rng.shuffle(people)
            for worker in people[: int(openings[firm])]:
                by_cell[firm.cell].append((worker, firm))
        occupancy = self._occupancy()
        for cell, hires in by_cell.items():
            self.rng.shuffle(hires)
            desks = int((self.capacity[cell] - occupancy[cell]) // p.floor_m2_per_worker + 1e-9)
            for worker, firm in hires[: max(desks, 0)]:
                worker.firm, worker.wage = firm, firm.wage_offer() * worker.skill
                firm.workers.add(worker)
                self.log.hires += 1

    def _compute_fields(self) -> None:
        """Bin firms' revenue by track and workers by home onto the coarse grid, then smooth."""
        geo, p = self.geo, self.params
        revenue = np.zeros((len(TRACKS), geo.coarse_size))
        for firm in self.firms:
            revenue[firm.track, geo.coarse(np.array([firm.cell]))[0]] += firm.revenue
        people = np.zeros((1, geo.coarse_size))
        for worker in self.workers:
            people[0, geo.coarse(np.array([worker.home]))[0]] += 1
        density = geo.smooth(revenue, p.agglomeration_radius_m)
        self.fields_access = log_ratio(geo.smooth(people, p.talent_radius_m), geo.coarse_city)[0]
        self.fields = Fields(density, city_mean(density, geo.coarse_city), self.fields_access.astype(np.float32),
                             kernel_self_weight(geo, p.agglomeration_radius_m))

    def firm_agglomeration(self, firm) -> float:
        """One firm's agglomeration from the other firms around it (the engine's rule, one firm at a time)."""
        coarse = self.geo.coarse(np.array([firm.cell]))
        return float(others_agglomeration(self.fields, np.array([firm.track]), coarse, np.array([firm.revenue]))[0])

    def _drift_offsets(self) -> tuple[float, float]:
        """Revenue-weighted city averages of agglomeration and talent access, which growth is relative to."""
        total = sum(f.revenue for f in self.firms)
        a = t = 0.0
        for firm in self.firms:
            coarse = self.geo.coarse(np.array([firm.cell]))[0]
            a += firm.revenue * self.firm_agglomeration(firm)
            t += firm.revenue * self.fields_access[coarse]
        return a / total, t / total

    def _found_firms(self) -> None:
        """Start-ups in proportion to the talent pool, placed by logit over cells sampled by floor space."""
        p = self.params
        births = self.rng.poisson(p.birth_rate * MONTH * len(self.workers))
        shares = np.array([TRACK_FIRM_SHARES[t] for t in TRACK_IDS])
        need = p.floor_m2_per_worker
        occupancy = self._occupancy()
        requests = []
        for _ in range(births):
            track = int(self.rng.choice(len(TRACK_IDS), p=shares))
            cells = self._sample_cells(p.candidates)
            best = self._best_cell(cells, track, lambda c: max(self.capacity[c] - occupancy[c], 0.0) >= need)
            if best is not None:
                requests.append((best, need, track))
        for cell, _, track in self._seat(requests, occupancy):
            revenue = float(startup_revenue(1, p, self.rng)[0])
            self.firms.append(Firm(self, track, revenue, cell, self.year, -1))
            self.log.firm_births += 1

    def _relocate_firms(self) -> None:
        """A share of firms (not anchors) re-choose among their own cell and sampled others."""
        p = self.params
        p_move = -math.expm1(-p.relocation_rate * MONTH)
        occupancy = self._occupancy()
        requests = []
        for firm in self.firms:
            if firm.anchor >= 0 or self.rng.random() >= p_move:
                continue
            need = firm.floor_need()
            cells = [firm.cell, *self._sample_cells(p.candidates)[1:]]
            room = lambda c, f=firm, n=need: max(self.capacity[c] - occupancy[c], 0.0) + (n if c == f.cell else 0.0) >= n  # noqa: E731
            best = self._best_cell(cells, firm.track, room, first_is_own=True)
            if best is not None and best != firm.cell:
                requests.append((best, need, firm))
        for cell, _, firm in self._seat(requests, occupancy):
            firm.cell = cell
            self.log.relocations += 1

    def _seat(self, requests: list[tuple[int, float, Any]], occupancy: np.ndarray) -> list[tuple[int, float, Any]]:
        """Serve floor-space requests per cell in random order; the first that does not fit closes the cell."""
        by_cell: dict[int, list] = defaultdict(list)
        for request in requests:
            by_cell[request[0]].append(request)
        seated = []
        for cell, queue in by_cell.items():
            self.rng.shuffle(queue)
            free = max(self.capacity[cell] - occupancy[cell], 0.0)
            for request in queue:
                if request[1] > free + 1e-9:
                    break
                free -= request[1]
                seated.append(request)
        return seated

    def _best_cell(self, cells, track: int, feasible, first_is_own: bool = False) -> int | None:
        """Gumbel-max logit over candidate cells; None if even the pick is infeasible."""
        best, best_u, best_ok = None, -math.inf, False
        for cell in cells:
            ok = feasible(cell)
            u = (self.location_utility(cell, track) if ok else -math.inf) + self.gumbel()
            if best is None or u > best_u:
                best, best_u, best_ok = cell, u, ok
        return best if best_ok else None

    def _update_land(self) -> None:
        """Rent responds to occupancy: base x (1 + elasticity x occupancy / capacity)."""
        occupancy = self._occupancy()
        use = np.divide(occupancy, self.capacity, out=np.zeros_like(occupancy), where=self.capacity > 0)
        self.rent = (self.geo.base_rent * (1.0 + self.params.rent_occupancy_elasticity * use)).astype(np.float32)

    # --- helpers --------------------------------------------------------------------
    def location_utility(self, cell: int, track: int) -> float:
        """How much a firm of this track likes a cell: its track nearby, talent, rent, universities and platforms."""
        p, geo = self.params, self.geo
        coarse = geo.coarse(np.array([cell]))[0]
        return (
            p.location_agglomeration * self.fields.agglomeration(track, coarse)
            + p.location_talent * self.fields_access[coarse]
            - p.location_rent * math.log(self.rent[cell])
            + p.university_weight * geo.pull[cell]
            + p.metro_weight_firm * geo.metro_access[cell]
        )

    def choose_home(self, work: int) -> int:
        """Home by logit over cells sampled by housing: rent and commute; the first if none is in reach."""
        p, geo = self.params, self.geo
        cells = self._sample(self._housing_cdf, p.home_candidates)
        best, best_u = cells[0], -math.inf
        for cell in cells:
            commute = self.distance_km(work, cell) if work >= 0 else 0.0
            appeal = -p.rent_weight_home * math.log(geo.base_rent[cell]) + p.metro_weight_home * geo.metro_access[cell]
            u = (appeal - p.commute_cost * commute) if commute <= p.commute_max_km else -math.inf
            u += self.gumbel()
            if u > best_u:
                best, best_u = cell, u
        return int(best)

    def distance_km(self, a: int, b: int) -> float:
        """Straight-line km between cell centres."""
        return float(self.geo.distance_km(np.array([a]), np.array([b]))[0])

    def gumbel(self) -> float:
        """A standard Gumbel draw."""
        return -math.log(-math.log(max(self.rng.random(), 1e-300)))

    def _sample_cells(self, k: int) -> list[int]:
        """Cells drawn by floor space."""
        return self._sample(self._capacity_cdf, k)

    def _sample(self, cdf: np.ndarray, k: int) -> list[int]:
        """k cells drawn with replacement in proportion to the weights whose running sum is ``cdf``."""
        return [int(c) for c in np.searchsorted(cdf, self.rng.random(k) * cdf[-1], side="right")]

    def _occupancy(self) -> np.ndarray:
        """Floor space in use per cell."""
        occupancy = np.zeros(self.geo.size)
        for firm in self.firms:
            occupancy[firm.cell] += firm.floor_need()
        return occupancy

    def _unemploy(self, worker: Worker) -> None:
        if worker.firm is not None:
            worker.firm.workers.discard(worker)
        worker.firm, worker.wage = None, 0.0

    def _remove_worker(self, worker: Worker) -> None:
        self._unemploy(worker)
        self.workers.remove(worker)
        worker.remove()

    def _close(self, firm: Firm) -> None:
        for worker in list(firm.workers):
            self._unemploy(worker)
        self.firms.remove(firm)
        firm.remove()

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


