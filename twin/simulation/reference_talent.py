"""The reference model's talent stage, one worker at a time: separations, in-migration, matching, home moves.

A mixin of :class:`twin.simulation.reference.ReferenceModel`; read with it.
Each step of the stage takes its draws from a :class:`~twin.simulation.reference_draws.Draws`
under the engine's process names, so keyed draws make it the engine's month
for the same workers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from .reference_agents import MONTH, Firm, Worker, pick, running_shares, skill
from .reference_draws import Draws


class Request(NamedTuple):
    """A claim on something scarce: a group (a firm's openings, a cell's floor space), how much, by whom."""

    group: Hashable
    need: float
    uid: int
    item: Any


def ration(requests: list[Request], room: Callable[[Hashable], float], draws: Draws, process: str) -> list[Any]:
    """Serve each group's requests in random order while they fit its room; after the first refusal the group
    turns the rest away (a small later request cannot jump a refused larger one). A group whose requests all
    fit takes them all. Returns the items served, in request order."""
    by_group: dict[Hashable, list[Request]] = defaultdict(list)
    for request in requests:
        by_group[request.group].append(request)
    served: set[int] = set()
    for group, queue in by_group.items():
        free = room(group)
        if sum(r.need for r in queue) <= free:
            served.update(id(r) for r in queue)
            continue
        used = 0.0
        for request in sorted(queue, key=lambda r: draws.uniform(process, r.uid)):
            used += request.need
            if used > free + 1e-9:
                break
            served.add(id(request))
    return [r.item for r in requests if id(r) in served]


class TalentStage:
    """The talent processes of :class:`twin.simulation.reference.ReferenceModel`."""

    def talent_stage(self, draws: Draws) -> None:
        """Separations and leaving, in-migration for unmet demand, matching, then home moves."""
        p, policy = self.params, self.policy
        p_leave = 1.0 - math.exp(-p.leave_rate_employed * MONTH / policy.talent_retention)
        p_quit = 1.0 - math.exp(-p.quit_rate * MONTH)
        p_move = 1.0 - math.exp(-p.home_move_rate * MONTH)
        seekers, movers = [], []
        for worker in list(self.workers):
            separation, move = draws.halves("talent_month", worker.uid)
            outcome = worker.separation(separation, p_leave, p_quit) if worker.firm else None
            if outcome:
                self._unemploy(worker)
            if outcome == "leave":
                self._remove_worker(worker)
                continue
            if worker.firm is None:
                seekers.append(worker)
            if move < p_move:
                movers.append(worker)
        p_seek_leave = 1.0 - math.exp(-p.leave_rate_seeking * MONTH / policy.talent_retention)
        staying = []
        for worker in seekers:
            if draws.uniform("seeker_leave", worker.uid) < p_seek_leave:
                self._remove_worker(worker)
            else:
                staying.append(worker)
        openings = self.open_positions()
        unmet = max(0.0, sum(openings.values()) - len(staying))
        arrivals = draws.poisson("arrivals", policy.talent_inflow * (p.inflow_response * unmet + p.inflow_base * MONTH * self.talent_pool()))
        for uid in draws.newborn_ids(arrivals):
            worker = Worker(self, uid, skill(draws.uniform("arrival_skill", uid), p), -1)
            worker.choose_home(*self.home_candidates(draws, uid))
            self.workers.append(worker)
            staying.append(worker)
            if draws.halves("talent_month", uid)[1] < p_move:
                movers.append(worker)
        self.log.talent_in += arrivals
        self.match(staying, openings, draws)
        for worker in movers:
            if worker.alive:
                worker.choose_home(*self.home_candidates(draws, worker.uid))

    def open_positions(self) -> dict[Firm, int]:
        """Unfilled positions of each firm that has some, scaled down to its share of its cell's free desks."""
        p = self.params
        gap = {f: f.gap() for f in self.firms}
        wanted: dict[int, float] = defaultdict(float)
        for firm, g in gap.items():
            wanted[firm.cell] += g
        free = self.free_m2()
        openings = {}
        for firm, g in gap.items():
            if g > 0:
                share = math.floor(g * min(1.0, free(firm.cell) / p.floor_m2_per_worker / wanted[firm.cell]))
                if share > 0:
                    openings[firm] = share
        return openings

    def match(self, seekers: list[Worker], openings: dict[Firm, int], draws: Draws) -> None:
        """Each seeker applies to its pick among vacancies sampled by openings; each firm takes applicants up to
        its openings, then each cell seats the taken hires while desks last; a hire earns the offer times skill."""
        if not seekers or not openings:
            return
        p = self.params
        hiring = list(openings)
        cdf = running_shares([float(openings[f]) for f in hiring])
        applied = []
        for worker in seekers:
            candidates = [hiring[pick(cdf, u)] for u in draws.uniforms("job_candidates", worker.uid, p.job_candidates)]
            firm = worker.pick_job(candidates, draws.uniforms32("job_noise", worker.uid, p.job_candidates))
            if firm is not None:
                applied.append(Request(firm, 1.0, worker.uid, (worker, firm)))
        taken = ration(applied, lambda firm: openings[firm], draws, "hire_order")
        free = self.free_m2()
        desks = [Request(firm.cell, p.floor_m2_per_worker, worker.uid, (worker, firm)) for worker, firm in taken]
        for worker, firm in ration(desks, free, draws, "desk_order"):
            worker.firm, worker.wage = firm, firm.wage_offer() * worker.skill
            firm.workers.add(worker)
            self.log.hires += 1

    def home_candidates(self, draws: Draws, uid: int) -> tuple[list[int], list[float]]:
        """A worker's candidate homes, sampled by housing, and the uniforms of their Gumbel noise."""
        k = self.params.home_candidates
        cells = [self._home_cells[pick(self._home_cdf, u)] for u in draws.uniforms("home_candidates", uid, k)]
        return cells, draws.uniforms32("home_noise", uid, k)

    def home_choice(self, work: int, cells: list[int], uniforms: list[float]) -> int:
        """Logit over candidate homes: -rent weight x log base rent + metro weight x access - commute cost x km
        (no commute without a job); beyond the longest commute a cell is out of reach; the first if none is."""
        p, geo = self.params, self.geo
        best, best_u = cells[0], -math.inf
        for j, (cell, u) in enumerate(zip(cells, uniforms)):
            km = self.distance_km(work, cell) if work >= 0 else 0.0
            appeal = -p.rent_weight_home * math.log(geo.base_rent[cell]) + p.metro_weight_home * geo.metro_access[cell]
            utility = (-math.inf if km > p.commute_max_km else appeal - p.commute_cost * km) - math.log(-math.log(u))
            if j == 0 or utility > best_u:
                best, best_u = cell, utility
        return int(best)

    def _unemploy(self, worker: Worker) -> None:
        """The worker leaves its employer's payroll."""
        if worker.firm is not None:
            worker.firm.workers.discard(worker)
        worker.firm, worker.wage = None, 0.0

    def _remove_worker(self, worker: Worker) -> None:
        """The worker leaves the city."""
        self._unemploy(worker)
        self.workers.remove(worker)
        worker.alive = False
        worker.remove()
        self.log.talent_out += 1
