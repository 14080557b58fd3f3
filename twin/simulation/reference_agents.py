"""The reference model's agents: one firm and one worker, each rule a plain Python method.

Read with :mod:`twin.simulation.reference`, whose model calls these methods in
the engine's monthly order.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from ..engine.labour import labour_demand, wage_offer
from ..engine.params import MONTH, TRACK_COMPUTE_INTENSITY, TRACK_IDS


class Firm(mesa.Agent):
    """One firm: a track, a revenue, a workforce and a cell."""

    def __init__(self, model: mesa.Model, track: int, revenue: float, cell: int, born: float, anchor: int) -> None:
        super().__init__(model)
        self.track, self.revenue, self.cell, self.born, self.anchor = track, revenue, cell, born, anchor
        self.workers: set[Worker] = set()

    @property
    def employees(self) -> int:
        """Workers on the payroll."""
        return len(self.workers)

    def floor_need(self) -> float:
        """A desk per worker plus one for the founders."""
        return (self.employees + 1) * self.model.params.floor_m2_per_worker

    def labour_demand(self) -> float:
        """Workers this revenue calls for."""
        return float(labour_demand(np.array([self.revenue]), self.model.params)[0])

    def wage_offer(self) -> float:
        """Annual wage offered."""
        return float(wage_offer(np.array([self.revenue]), self.model.params)[0])

    def grow(self, drift_offsets: tuple[float, float]) -> None:
        """Gibrat growth: drift from agglomeration, talent, labour shortage and compute price, plus noise."""
        p, m = self.model.params, self.model
        coarse = m.geo.coarse(np.array([self.cell]))[0]
        agglomeration = m.firm_agglomeration(self) - drift_offsets[0]
        access = m.fields_access[coarse] - drift_offsets[1]
        shortage = min(max(1.0 - self.employees / self.labour_demand(), 0.0), 1.0)
        intensity = TRACK_COMPUTE_INTENSITY[TRACK_IDS[self.track]]
        drift = (
            p.growth_mu
            + p.agglomeration_weight * agglomeration
            + p.talent_weight * access
            - p.growth_size_drag * math.log10(max(self.revenue / 1e8, 1.0))
            - p.labour_penalty * shortage
            - p.compute_weight * p.compute_cost_share * intensity * (m.compute_price - 1.0)
        )
        sigma = p.growth_sigma * (max(self.revenue, p.sigma_floor_cny) / 1e7) ** -p.sigma_size_elasticity
        self.revenue *= math.exp(drift * MONTH + sigma * math.sqrt(MONTH) * m.rng.standard_normal())

    def maybe_exit(self) -> bool:
        """Close with a monthly hazard that falls with size and age."""
        p, m = self.model.params, self.model
        age = m.year - self.born
        hazard = (p.exit_rate * (max(self.revenue, 1.0) / 1e6) ** -p.exit_size_elasticity
                  * (1.0 + p.exit_youth_factor * math.exp(-age / 2.0)) * math.exp(-max(self.revenue, 1.0) / p.exit_shield_cny))
        return m.rng.random() < -math.expm1(-hazard * MONTH)


class Worker(mesa.Agent):
    """One worker: a skill, a home and maybe an employer."""

    def __init__(self, model: mesa.Model, skill: float, home: int) -> None:
        super().__init__(model)
        self.skill, self.home = skill, home
        self.firm: Firm | None = None
        self.wage = 0.0

    def separate(self, p_leave: float, p_quit: float) -> str | None:
        """An employed worker may leave the city or quit to seek another job."""
        u = self.model.rng.random()
        if u < p_leave:
            return "leave"
        if u < p_leave + p_quit:
            return "quit"
        return None

    def pick_job(self, candidates: list[Firm]) -> Firm | None:
        """Logit over sampled vacancies: log wage minus commute cost; none if the best is out of reach."""
        p, m = self.model.params, self.model
        best, best_u, best_d = None, -math.inf, math.inf
        for firm in candidates:
            d = m.distance_km(self.home, firm.cell)
            u = (math.log(firm.wage_offer()) - p.commute_cost * d) if d <= p.commute_max_km else -math.inf
            u += m.gumbel()
            if best is None or u > best_u:
                best, best_u, best_d = firm, u, d
        return best if best_d <= p.commute_max_km else None

    def choose_home(self) -> None:
        """Logit over homes sampled by housing: rent and (if employed) commute; the first if none is in reach."""
        self.home = self.model.choose_home(self.firm.cell if self.firm else -1)
