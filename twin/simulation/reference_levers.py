"""The policy levers stated one firm at a time: what each lever gives each firm, zone or flow this month.

Each rule reads a lever's fields (the scenario's pydantic objects of
:mod:`twin.policy.levers`: the data are shared, the rules are not) and writes
a :class:`Policy`, the reference's counterpart of the engine's
``Effects``. Draws that levers take from the model's seeded ``rng`` (which
firms get a specialised-model subsidy or a fund ticket) are asked of the same
generator in the same order, so a reference given the engine's ``rng`` state
picks the same firms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.params import TIERS, TRACK_IDS
from ..policy.hook import lever_labels
from .reference_agents import MONTH, Firm


@dataclass
class Policy:
    """One month's policy channels, by firm id where they are per firm; neutral when no lever acts."""

    zone_appeal: list[float]  # logit utility added to locating in each zone
    growth: dict[int, float] = field(default_factory=dict)  # annual log growth added
    funding: dict[int, float] = field(default_factory=dict)  # CNY received this month
    sales: dict[int, float] = field(default_factory=dict)  # CNY/yr of contract sales starting this month
    lasting: dict[int, float] = field(default_factory=dict)  # CNY/yr added to the firm's own revenue
    talent_inflow: float = 1.0  # multiplier on in-migration
    talent_retention: float = 1.0  # divisor on the rates of leaving the city
    births: float = 1.0  # multiplier on firm births
    spend: dict[str, float] = field(default_factory=dict)  # lever label -> CNY spent this month

    def give(self, firm: Firm, cny: float, channel: str = "funding") -> None:
        """Add ``cny`` to a firm's funding (or its ``sales`` or ``lasting`` channel)."""
        flows = getattr(self, channel)
        flows[firm.uid] = flows.get(firm.uid, 0.0) + cny

    def growth_add(self, firm: Firm, rate: float) -> None:
        """Add ``rate`` of annual log growth to a firm this month."""
        self.growth[firm.uid] = self.growth.get(firm.uid, 0.0) + rate


def additional(model: Any, firm: Firm) -> float:
    """Share of a grant to this firm that is additional: the small-firm response below the leader threshold or when
    younger than young_firm_years, else the large-firm one."""
    p = model.params
    small = firm.revenue < p.leader_threshold_cny or model.year - firm.born < p.young_firm_years
    return p.grant_additionality_small if small else p.grant_additionality_large


def apply_levers(model: Any, levers: list[Any]) -> Policy:
    """This month's policy: each lever's rule in scenario order (model: a ReferenceModel)."""
    policy = Policy([0.0] * len(model.geo.zone_ids))
    for label, lever in zip(lever_labels(levers), levers):
        policy.spend[label] = RULES[lever.kind](model, lever, policy)
    return policy


def active(lever: Any, year: float) -> bool:
    """A lever acts in the months from 1 January of start_year to 31 December of end_year."""
    return lever.start_year <= year < lever.end_year + 1


def opens_now(model: Any, year: int) -> bool:
    """True in the first month of ``year``; actions dated at or before the base year happen in the first simulated month."""
    return abs(model.year - max(year, model.start_year + 1)) < 1e-6


def reaches(model: Any, lever: Any, firm: Firm) -> bool:
    """Whether a lever's zones, districts, tracks and tiers (each empty = all) include this firm."""
    geo = model.geo
    zone, district = int(geo.zone[firm.cell]), int(geo.district[firm.cell])
    return ((not lever.zones or (zone >= 0 and geo.zone_ids[zone] in lever.zones))
            and (not lever.districts or (district >= 0 and geo.district_names[district] in lever.districts))
            and (not lever.tracks or TRACK_IDS[firm.track] in lever.tracks)
            and (not lever.tiers or TIERS[firm.tier()] in lever.tiers))


def vouchers(model: Any, lever: Any, policy: Policy) -> float:
    """算力券: each reached firm claims max_share of its compute cost, at most max_per_firm a year; claims beyond
    the (scaled) budget are cut alike. voucher_additionality of each month's payment is the firm's funding."""
    if not active(lever, model.year):
        return 0.0
    p = model.params
    firms = [f for f in model.firms if reaches(model, lever, f)]
    cost = [f.revenue * p.compute_cost_share * f.intensity * model.compute_price for f in firms]
    claim = [min(lever.max_share * c, lever.max_per_firm_cny) for c in cost]
    total = sum(claim)
    cut = min(1.0, lever.budget_cny_per_year * p.scale / total) if total > 0 else 0.0
    for firm, k in zip(firms, claim):
        policy.give(firm, k * cut * MONTH * p.voucher_additionality)
    return total * cut * MONTH


def model_subsidies(model: Any, lever: Any, policy: Policy) -> float:
    """Each January: the largest reached firm gets the large-model subsidy; a binomial number of the others
    (specialised_per_year chances at the run's scale) get the specialised one, drawn by revenue without replacement.
    Each firm's funding is the additional share of what it gets."""
    if not active(lever, model.year) or abs(model.year % 1) > 1e-6:
        return 0.0
    firms = [f for f in model.firms if reaches(model, lever, f)]
    if not firms:
        return 0.0
    share = min(model.params.scale, 1.0)
    leader = max(firms, key=lambda f: f.revenue)  # the first of equals, as an argmax
    policy.give(leader, lever.large_model_cny * share * additional(model, leader))
    others = [f for f in firms if f is not leader]
    k = min(int(model.rng.binomial(lever.specialised_per_year, share)), len(others))
    if k:
        revenue = np.array([f.revenue for f in others])
        for i in model.rng.choice(len(others), size=k, replace=False, p=revenue / revenue.sum()):
            policy.give(others[i], lever.specialised_cny * additional(model, others[i]))
    return lever.large_model_cny * share + k * lever.specialised_cny


def fund_tranche(lever: Any, year: int, first: int) -> float:
    """CNY the fund invests in ``year``: total / deploy_years in each deployment year up to end_year; the
    tranches of deployment years before the first simulated year ``first`` are all invested in ``first``."""
    last = min(lever.start_year + lever.deploy_years - 1, lever.end_year)
    if year < first or year < lever.start_year or year > last:
        return 0.0
    years = 1
    if year == first:
        years += len(range(lever.start_year, min(first, last + 1)))
    return lever.total_cny / lever.deploy_years * min(years, lever.deploy_years)


def credit_outstanding(lever: Any, now: float, first: int) -> float:
    """Credit principal outstanding at ``now``: each month's credit (credit_ratio x that month's share of its
    year's tranche), repaid evenly over credit_years."""
    total = 0.0
    for month in range(max(0, round((now - first) * 12))):
        issued = first + month / 12.0
        principal = fund_tranche(lever, int(issued), first) * lever.credit_ratio * MONTH
        total += principal * min(max(1.0 - (now - issued) / lever.credit_years, 0.0), 1.0)
    return total


def vision_fund(model: Any, lever: Any, policy: Policy) -> float:
    """The 视谷 fund: appeal in its zones; a Poisson number of tickets a month (this year's tranche times the deployment
    share at the run's scale, in tickets, over twelve), each to a reached firm drawn by revenue, bringing the ticket plus
    its additional credit, times the equity additionality and the firm's grant additionality, as funding. Spend: the
    tickets and the interest subsidy on the (deployed) credit outstanding."""
    if not active(lever, model.year):
        return 0.0
    first, scale = model.start_year + 1, model.params.scale * model.params.fund_deployment_share
    for z in lever.zones or model.geo.zone_ids:
        policy.zone_appeal[model.geo.zone_ids.index(z)] += lever.appeal
    spend = lever.credit_spread * credit_outstanding(lever, model.year, first) * scale * MONTH
    tickets = int(model.rng.poisson(fund_tranche(lever, int(model.year), first) * scale / lever.ticket_cny * MONTH))
    firms = [f for f in model.firms if reaches(model, lever, f)]
    if tickets and firms:
        revenue = np.array([f.revenue for f in firms])
        for i in model.rng.choice(len(firms), size=tickets, p=revenue / revenue.sum()):
            brought = lever.ticket_cny * (1.0 + lever.credit_ratio * lever.credit_additionality) * model.params.equity_additionality
            policy.give(firms[i], brought * additional(model, firms[i]))
        spend += tickets * lever.ticket_cny
    return spend


def compute_buildout(model: Any, lever: Any, policy: Policy) -> float:
    """Each site comes online at its anchor in the first month of its year; its capex is spent then. Each reached
    firm adopts it if its uniform from the levers' generator is below the site's share of supply, and gains
    compute_adoption_lift of log sales that month."""
    spend = 0.0
    for site in lever.sites:
        if opens_now(model, site.year):
            share = site.pflops / (sum(c[0] for c in model.compute) + site.pflops)
            firms = [f for f in model.firms if reaches(model, lever, f)]
            for firm, u in zip(firms, model.rng.random(len(firms))):
                if u < share:
                    policy.growth_add(firm, model.params.compute_adoption_lift / MONTH)
            model.compute.append((float(site.pflops), model.geo.anchor_cells[site.anchor], float(site.year)))
            spend += site.pflops * lever.cost_cny_per_pflops * model.params.scale
    return spend


def parks(model: Any, lever: Any, policy: Policy) -> float:
    """A park opening spreads its floor space (at the run's scale) evenly over the city cells within its radius;
    from its opening its zone gets the lever's appeal. In its first year, reached firms within its radius grow
    park_productivity_lift a year faster, and reached firms elsewhere lose park_displacement of their yuan gain, pro rata."""
    if not active(lever, model.year):
        return 0.0
    geo, spend = model.geo, 0.0
    for park in lever.parks:
        opens = park.year or lever.start_year
        centre = geo.anchor_cells[park.anchor]
        if opens_now(model, opens):
            near = [c for c in model.cells_around(centre, park.radius_m) if geo.district[c] >= 0 and model.distance_km(centre, c) * 1000 <= park.radius_m]
            floor = park.floor_m2 * model.params.scale
            for c in near:
                model.add_floor(c, floor / len(near))
            spend += floor * lever.cost_cny_per_m2
        if model.year >= max(opens, model.start_year + 1):
            policy.zone_appeal[geo.zone[centre]] += lever.appeal
        if 0 <= model.year - max(opens, model.start_year + 1) < 1:
            park_lift(model, lever, policy, centre, park.radius_m)
    return spend


def park_lift(model: Any, lever: Any, policy: Policy, centre: int, radius_m: float) -> None:
    """One month of a park's first-year productivity gain inside it, and the displacement of that gain elsewhere."""
    p = model.params
    firms = [f for f in model.firms if reaches(model, lever, f)]
    inside = [f for f in firms if model.distance_km(centre, f.cell) * 1000 <= radius_m]
    outside = [f for f in firms if f not in inside]
    for firm in inside:
        policy.growth_add(firm, p.park_productivity_lift)
    gained = sum(f.revenue for f in inside) * p.park_productivity_lift * MONTH
    rest = sum(f.revenue for f in outside)
    for firm in outside if rest > 0 else ():
        policy.growth_add(firm, -p.park_displacement * gained / rest / MONTH)


def talent(model: Any, lever: Any, policy: Policy) -> float:
    """In-migration multiplied by 1 + talent_inflow_gain; the rates of leaving the city divided by 1 + talent_retention_gain."""
    if not active(lever, model.year):
        return 0.0
    policy.talent_inflow *= 1.0 + model.params.talent_inflow_gain
    policy.talent_retention *= 1.0 + model.params.talent_retention_gain
    return lever.cost_cny_per_year * model.params.scale * MONTH


def smart_om(model: Any, lever: Any, policy: Policy) -> float:
    """城市智慧运维 and 揭榜挂帅: each January a binomial number of contracts (contracts_per_year chances at the run's
    scale) go to reached firms with at least min_revenue, drawn alike without replacement; each winner's sales rise
    by the contract value, and a winner younger than young_firm_years keeps procurement_lasting_share of it for good."""
    if not active(lever, model.year) or abs(model.year % 1) > 1e-6:
        return 0.0
    p = model.params
    firms = [f for f in model.firms if reaches(model, lever, f) and f.revenue >= lever.min_revenue_cny]
    k = min(int(model.rng.binomial(lever.contracts_per_year, min(p.scale, 1.0))), len(firms))
    for i in model.rng.choice(len(firms), size=k, replace=False) if k else ():
        policy.give(firms[i], lever.contract_cny, "sales")
        if model.year - firms[i].born < p.young_firm_years:
            policy.give(firms[i], p.procurement_lasting_share * lever.contract_cny, "lasting")
    return k * lever.contract_cny


RULES: dict[str, Callable[[Any, Any, Policy], float]] = {
    "compute_vouchers": vouchers, "model_subsidies": model_subsidies, "vision_fund": vision_fund,
    "compute_buildout": compute_buildout, "parks": parks, "talent": talent, "smart_om": smart_om,
}
