"""The reference model's agents: one firm and one worker, each rule a plain Python method.

Read with :mod:`twin.simulation.reference`, whose model calls these methods in
the engine's monthly order. Every formula here is written from its
documented statement (docs/parameters.md, the engine's docstrings), not
imported from the engine, so a wrong rule in the engine is not mirrored in its
oracle; only constants and data (tracks, intensities, parameters) are shared.

A rule that needs chance takes its draw as an argument (a uniform, a normal,
a candidate list with its uniforms), so the same rule serves the model's own
seeded draws and, in tests/test_rules.py, the engine's keyed draws for the
same agent and month.
"""

from __future__ import annotations

import bisect
import math
from statistics import NormalDist

import mesa

from ..engine.params import MONTH, TRACK_COMPUTE_INTENSITY, TRACK_IDS, Params

STANDARD_NORMAL = NormalDist()


class Firm(mesa.Agent):
    """One firm: a stable id, a track, a revenue, a workforce, a cell, a policy stock and a density level."""

    def __init__(self, model: mesa.Model, uid: int, track: int, revenue: float, cell: int, born: float, anchor: int,
                 stock: float = 0.0, received: float = 0.0, level: float = 0.0, contract: float = 0.0) -> None:
        super().__init__(model)
        self.uid, self.track, self.revenue, self.cell, self.born, self.anchor = uid, track, revenue, cell, born, anchor
        self.stock = stock  # CNY of policy funding still at work
        self.received = received  # CNY of policy funding received, cumulative
        self.level = level  # log productivity from the density around it that the revenue holds now
        self.contract = contract  # CNY/yr of contract sales in revenue, running off
        self.workers: set[Worker] = set()

    @property
    def employees(self) -> int:
        """Workers on the payroll."""
        return len(self.workers)

    @property
    def intensity(self) -> float:
        """The track's compute intensity (1 = model builders)."""
        return TRACK_COMPUTE_INTENSITY[TRACK_IDS[self.track]]

    def floor_need(self) -> float:
        """A desk per worker plus one for the founders."""
        return (self.employees + 1) * self.model.params.floor_m2_per_worker

    def revenue_per_worker(self) -> float:
        """Revenue per worker: base x (revenue / 10 M)^productivity elasticity (revenue at least 1)."""
        p = self.model.params
        return p.revenue_per_worker_cny * (max(self.revenue, 1.0) / 1e7) ** p.productivity_elasticity

    def labour_demand(self) -> float:
        """Workers this revenue calls for: revenue over revenue per worker, at least one."""
        return max(1.0, self.revenue / self.revenue_per_worker())

    def gap(self) -> int:
        """Unfilled positions: whole workers demanded minus those employed, not below 0."""
        return max(math.ceil(self.labour_demand()) - self.employees, 0)

    def wage_offer(self) -> float:
        """Annual wage offered to a worker of skill 1: the labour share of revenue per worker."""
        return self.model.params.wage_share * self.revenue_per_worker()

    def tier(self) -> int:
        """Index into params.TIERS: how many of the SME, 规上 and leader floors the revenue reaches."""
        p = self.model.params
        return sum(self.revenue >= floor for floor in (p.sme_threshold_cny, p.guishang_threshold_cny, p.leader_threshold_cny))

    def compute_pflops(self) -> float:
        """PFLOPS demanded: per 100 M CNY of revenue, times the track's intensity."""
        return self.revenue / 1e8 * self.model.params.compute_pflops_per_100m_cny * self.intensity

    def youth(self) -> float:
        """How young the firm is, for growth: exp(-age / growth_age_scale_years), 1 at birth."""
        return math.exp(-(self.model.year - self.born) / self.model.params.growth_age_scale_years)

    def sigma(self) -> float:
        """Annual sd of log growth: growth_sigma x (revenue, at least the floor, / 10 M)^-beta, times
        (1 + growth_youth_volatility x youth), at most 1."""
        p = self.model.params
        size = p.growth_sigma * (max(self.revenue, p.sigma_floor_cny) / 1e7) ** -p.sigma_size_elasticity
        return min(size * (1.0 + p.growth_youth_volatility * self.youth()), 1.0)

    def drift(self, access: float, sigma: float) -> float:
        """Annual log-growth drift: the mean growth, the young-firm premium, the Laplace shock's convexity
        log(1 - sigma^2/2) (so that revenue's mean grows at the mean growth), talent access (relative to its city average),
        a drag per tenfold above 1 亿, the labour shortage, the compute price, and policy growth."""
        p, m = self.model.params, self.model
        shortage = min(max(1.0 - self.employees / self.labour_demand(), 0.0), 1.0)
        return (
            p.growth_mu
            + p.growth_youth_premium * self.youth()
            + math.log(1.0 - sigma**2 / 2.0)
            + p.talent_weight * access
            - p.growth_size_drag * math.log10(max(self.revenue / 1e8, 1.0))
            - p.labour_penalty * shortage
            - p.compute_weight * p.compute_cost_share * self.intensity * (m.compute_price - 1.0)
            + m.policy.growth.get(self.uid, 0.0)
        )

    def grow(self, access: float, level: float, shock: float, variance: float) -> None:
        """One month of growth: the drift, a Laplace shock (the standard normal ``shock`` times the root of the year's
        exponential ``variance``), the change of the density ``level`` since last month, and the policy stock.

        Revenue is an organic part, which grows, plus funding_return times the
        policy stock; the stock decays with its half-life and takes this
        month's funding. Contract sales are a second lift: this month's new
        contracts plus the old ones, of which exp(-1/12) is left each month (a
        mean life of a year); lasting sales join the organic part. The level moves revenue once: the firm then holds ``level``.
        """
        p, m = self.model.params, self.model
        sigma = self.sigma()
        funding = m.policy.funding.get(self.uid, 0.0)
        fresh = self.stock * 0.5 ** (MONTH / p.funding_half_life_years) + funding
        organic = max(self.revenue - p.funding_return * self.stock - self.contract, 1.0) + m.policy.lasting.get(self.uid, 0.0)
        contract = self.contract * math.exp(-MONTH) + m.policy.sales.get(self.uid, 0.0)
        growth = self.drift(access, sigma) * MONTH + sigma * math.sqrt(MONTH) * math.sqrt(variance) * shock + level - self.level
        self.revenue = organic * math.exp(growth) + p.funding_return * fresh + contract
        self.stock, self.level, self.contract = fresh, level, contract
        self.received += funding

    def exit_hazard(self, year: float) -> float:
        """Annual exit hazard: rate x (revenue / 1 M)^-elasticity x (1 + youth x e^(-age/2)) x e^(-revenue / shield)."""
        p = self.model.params
        revenue, age = max(self.revenue, 1.0), year - self.born
        return (p.exit_rate * (revenue / 1e6) ** -p.exit_size_elasticity
                * (1.0 + p.exit_youth_factor * math.exp(-age / 2.0)) * math.exp(-revenue / p.exit_shield_cny))

    def exits(self, year: float, u: float) -> bool:
        """Whether the firm closes this month, given its uniform ``u``."""
        return u < 1.0 - math.exp(-self.exit_hazard(year) * MONTH)


class Worker(mesa.Agent):
    """One worker: a stable id, a skill, a home and maybe an employer."""

    def __init__(self, model: mesa.Model, uid: int, skill: float, home: int) -> None:
        super().__init__(model)
        self.uid, self.skill, self.home = uid, skill, home
        self.firm: Firm | None = None
        self.wage = 0.0
        self.alive = True

    @staticmethod
    def separation(u: float, p_leave: float, p_quit: float) -> str | None:
        """An employed worker's month, given its uniform ``u``: leave the city, quit to seek, or stay."""
        if u < p_leave:
            return "leave"
        if u < p_leave + p_quit:
            return "quit"
        return None

    def pick_job(self, candidates: list[Firm], uniforms: list[float]) -> Firm | None:
        """Logit over sampled vacancies (Gumbel noise from ``uniforms``): log wage minus commute cost;
        none if the best is beyond the longest commute."""
        p, m = self.model.params, self.model
        best, best_u, best_far = None, -math.inf, True
        for firm, u in zip(candidates, uniforms):
            km = m.distance_km(self.home, firm.cell)
            far = km > p.commute_max_km
            utility = (-math.inf if far else math.log(firm.wage_offer()) - p.commute_cost * km) + gumbel(u)
            if best is None or utility > best_u:
                best, best_u, best_far = firm, utility, far
        return None if best_far else best

    def choose_home(self, cells: list[int], uniforms: list[float]) -> None:
        """Home by logit over candidate cells: cheap rent, metro access and (if employed) a short commute;
        the first candidate if none is in reach."""
        self.home = self.model.home_choice(self.firm.cell if self.firm else -1, cells, uniforms)


def gumbel(u: float) -> float:
    """The standard Gumbel draw at uniform ``u``."""
    return -math.log(-math.log(u))


def pick(cdf: list[float], u: float) -> int:
    """The index a uniform selects from normalized running sums ``cdf`` (inverse CDF; the last bin takes the rest)."""
    return min(bisect.bisect_right(cdf, u), len(cdf) - 1)


def running_shares(weights: list[float]) -> list[float]:
    """Running sums of the weights over their total (summed in order)."""
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [c / total for c in out]


def startup_revenue(u: float, p: Params) -> float:
    """A start-up's revenue at uniform ``u``: lognormal (median, sigma) truncated below the 规上 threshold."""
    top = STANDARD_NORMAL.cdf((math.log(p.guishang_threshold_cny) - math.log(p.micro_median_cny)) / p.micro_sigma)
    return math.exp(math.log(p.micro_median_cny) + p.micro_sigma * STANDARD_NORMAL.inv_cdf(u * top))


def skill(u: float, p: Params) -> float:
    """A newcomer's skill at uniform ``u``: lognormal with mean 1 and log-sd skill_sigma."""
    return math.exp(p.skill_sigma * STANDARD_NORMAL.inv_cdf(u) - 0.5 * p.skill_sigma**2)


def normal(u: float) -> float:
    """The standard normal at uniform ``u``."""
    return STANDARD_NORMAL.inv_cdf(u)
