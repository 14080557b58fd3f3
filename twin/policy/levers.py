"""Policy levers: declarative scenario entries that act on the engine through the policy hook.

Each lever is a pydantic model (so scenario files are validated and
documented by the same class) with an ``apply(model, effects)`` method that
the model calls at the start of every month. A lever acts only from
``start_year`` to ``end_year`` and, where it has them, only on firms in the
``zones``, ``districts``, ``tracks`` and ``tiers`` it names (empty = all).

Defaults come from published figures, each cited as docs/sources.md#<anchor>
(the seed article, docs/sources.md#s-seed, and the 2024 voucher rules,
docs/sources.md#s-lever-vouchers-2024); the rest are marked ASSUMPTION in
the field descriptions and are safe to change.
Every lever books the public money it spends each month with ``effects.add_spend``
(metrics.csv ``spend_cny`` by lever); costs and responses are argued in docs/levers.md.

Amounts are stated for the whole city. A run at ``params.scale`` below 1
simulates that share of the firms, so money, tickets, subsidised models and
park floor space are scaled by it too; compute build-out is not, because the
compute price depends on supply relative to the base year.

Lever fields state a policy's size (budgets, counts, contract sizes, years,
places). How strongly firms respond (additionality, returns, lifts) is never
a lever field: it is a response parameter of ``Params`` (twin/engine/params.py,
"policy response", each with its evidence range and grade), and each kind
names those it rests on in ``responses``. The common part of a lever is in
:mod:`twin.policy.lever_base`; parks, talent and smart_om in
:mod:`twin.policy.levers_place`; ``LEVER_CLASSES`` here is the one registry.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..engine.effects import Effects
from ..engine.params import INTENSITY, MONTH
from ..engine.values import Float, Int
from .hook import PolicyModel
from .lever_base import AI_INTENSIVE, ScenarioLever, TierName, TrackName, grant_additionality
from .levers_place import Parks, SmartOM, Talent


class ComputeVouchers(ScenarioLever):
    """算力券: pays a share of eligible firms' compute cost; the additional part of it lifts their sales, and the lift fades.

    Changes: the ``funding`` channel. Of each yuan paid, ``params.voucher_additionality``
    (0.8 in the Dutch voucher lottery, docs/sources.md#s-ev-vouchers-rct) pays for work
    the firm would not have done and enters its policy stock, which lifts sales by
    ``params.funding_return`` and fades with ``params.funding_half_life_years``
    (UK Growth Vouchers: a turnover gain lasting about a year); the rest changes
    nothing. No lasting change of the growth rate. Each firm gets at most
    ``max_share`` of its cost and ``max_per_firm_cny`` a year; if claims pass
    the budget, all are scaled down alike. Sources: ¥50 M a year
    (docs/sources.md#s-lever-vouchers); ¥250 M a year, ≤ 30 % of cost, ≤ ¥8 M per firm
    from July 2024 (docs/sources.md#s-lever-vouchers-2024). By default SMEs in AI-intensive tracks.
    """

    kind: Literal["compute_vouchers"]
    responses: ClassVar[tuple[str, ...]] = ("voucher_additionality", "compute_cost_share", "funding_return", "funding_half_life_years")
    budget_cny_per_year: Float = Field(50e6, ge=0, le=1e11, description="¥50 M a year (docs/sources.md#s-lever-vouchers); 2024: ¥250 M (docs/sources.md#s-lever-vouchers-2024)")
    max_share: Float = Field(0.3, ge=0, le=1, description="largest share of a firm's compute cost paid (2024 rule: 30%, docs/sources.md#s-lever-vouchers-2024)")
    max_per_firm_cny: Float = Field(8e6, ge=0, le=1e10, description="cap per firm per year (2024 rule: ¥8 M, docs/sources.md#s-lever-vouchers-2024)")
    tracks: list[TrackName] = Field(default_factory=lambda: list(AI_INTENSIVE), description="AI-intensive tracks by default")
    tiers: list[TierName] = Field(default_factory=lambda: ["micro", "sme", "guishang"], description="SMEs by default (not leaders)")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if not self.active(model.year):
            return
        firms, p = model.state.firms, model.params
        rows = np.flatnonzero(self.targets(model))
        cost = firms.revenue[rows] * p.compute_cost_share * INTENSITY[firms.track[rows]] * model.state.compute_price
        claim = np.minimum(self.max_share * cost, self.max_per_firm_cny)
        budget = self.budget_cny_per_year * p.scale
        scale = min(1.0, budget / claim.sum()) if claim.sum() > 0 else 0.0
        paid = claim * scale * MONTH
        effects.funding[rows] += paid * p.voucher_additionality
        effects.add_spend(paid.sum())


class ModelSubsidies(ScenarioLever):
    """Large-model and specialised-model subsidies: one-off funding to model builders each year.

    Changes: the ``funding`` channel. At the start of each active year the
    largest firm of the targeted tracks receives the large-model training
    subsidy (up to ¥50 M for a > 100 B-parameter model that leads nationally,
    docs/sources.md#s-lever-large-model), and ``specialised_per_year`` other firms, drawn in proportion to
    revenue, receive up to ¥5 M each for models deployed in Hangzhou (≤ 10 a
    year, docs/sources.md#s-lever-specialised). Only the additional share of a subsidy
    (:func:`grant_additionality`: near zero for a mature leader, most of it for a
    small or young firm) enters the policy stock, which turns into revenue at
    ``params.funding_return`` and fades.
    """

    kind: Literal["model_subsidies"]
    responses: ClassVar[tuple[str, ...]] = ("grant_additionality_small", "grant_additionality_large", "young_firm_years", "funding_return", "funding_half_life_years")
    large_model_cny: Float = Field(50e6, ge=0, le=1e10, description="up to ¥50 M (docs/sources.md#s-lever-large-model)")
    specialised_per_year: Int = Field(10, ge=0, le=1000, description="up to 10 a year (docs/sources.md#s-lever-specialised)")
    specialised_cny: Float = Field(5e6, ge=0, le=1e9, description="up to ¥5 M each (docs/sources.md#s-lever-specialised)")
    tracks: list[TrackName] = Field(default_factory=lambda: ["foundation", "technology"], description="model builders")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if not self.active(model.year) or abs(model.year % 1) > 1e-6:
            return
        firms = model.state.firms
        rows = np.flatnonzero(self.targets(model))
        if len(rows) == 0:
            return
        scale = model.params.scale
        leader = rows[np.argmax(firms.revenue[rows])]
        effects.funding[leader] += self.large_model_cny * min(scale, 1.0) * grant_additionality(model, np.array([leader]))[0]
        effects.add_spend(self.large_model_cny * min(scale, 1.0))
        others = rows[rows != leader]
        k = min(model.rng.binomial(self.specialised_per_year, min(scale, 1.0)), len(others))
        if k:
            weight = firms.revenue[others] / firms.revenue[others].sum()
            chosen = model.rng.choice(others, size=k, replace=False, p=weight)
            effects.funding[chosen] += self.specialised_cny * grant_additionality(model, chosen)
            effects.add_spend(k * self.specialised_cny)


class VisionFund(ScenarioLever):
    """The ¥3 bn 中国视谷 fund: minority equity (with 1:1 credit) in firms in the target zones.

    Changes: the ``funding`` channel of firms it invests in, and the
    ``zone_appeal`` channel of the target zones. The fund plans to deploy
    ``total_cny`` evenly over ``deploy_years`` from ``start_year``, and invests
    ``params.fund_deployment_share`` of each planned tranche (docs/sources.md#s-ev-government-vc); tranches
    dated before the first simulated year are carried into it, so none is
    lost. Tickets of ``ticket_cny`` go to firms drawn in proportion to
    revenue among targeted SMEs and 规上 firms; equity paid in is spend. Each
    ticket brings ``credit_ratio`` times itself as low-interest credit: a
    loan, repaid evenly over ``credit_years``, so only the interest subsidy
    (``credit_spread`` a year on the scheduled principal outstanding) is
    spend, and only ``credit_additionality`` of the principal funds activity
    the firm would not have financed anyway. Of what a ticket brings, only
    ``params.equity_additionality`` (money private VC would not have put in)
    times :func:`grant_additionality` (by the firm's size and age) enters its
    policy stock. Sources: docs/sources.md#s-lever-fund,
    #s-lever-credit; the rest are ASSUMPTIONs argued in docs/levers.md.
    """

    kind: Literal["vision_fund"]
    responses: ClassVar[tuple[str, ...]] = (
        "fund_deployment_share", "equity_additionality", "grant_additionality_small", "grant_additionality_large", "young_firm_years",
        "funding_return", "funding_half_life_years",
    )
    total_cny: Float = Field(3e9, ge=0, le=1e12, description="¥3 bn (docs/sources.md#s-lever-fund)")
    deploy_years: Int = Field(5, ge=1, le=30, description="ASSUMPTION (range 3-7, a typical fund investment period): years over which the total is invested")
    credit_ratio: Float = Field(1.0, ge=0, le=10, description="credit 1:1 to the fund's investment (docs/sources.md#s-lever-credit)")
    credit_years: Float = Field(3.0, gt=0, le=30, description="ASSUMPTION (range 1-5): loan term; principal repaid evenly")
    credit_spread: Float = Field(0.015, ge=0, le=0.2, description="ASSUMPTION (range 0.005-0.025 a year): interest subsidy per yuan of principal outstanding, the credit's only cost")
    credit_additionality: Float = Field(0.5, ge=0, le=1, description="ASSUMPTION (range 0.2-1): share of the credit that funds activity the firm would not otherwise finance")
    ticket_cny: Float = Field(2e7, gt=0, le=1e10, description="ASSUMPTION: ¥20 M a ticket")
    appeal: Float = Field(0.5, ge=0, le=10, description="ASSUMPTION: logit utility the fund adds to locating in its zones")
    zones: list[str] = Field(default_factory=lambda: ["window", "core"], description="the 萧山 and 滨江 cores and the window park in 萧山 (docs/sources.md#s-lever-fund)")
    tiers: list[TierName] = Field(default_factory=lambda: ["sme", "guishang"])

    def tranche(self, year: int, first: int) -> float:
        """City-wide CNY invested in ``year``; the tranches of years before ``first`` (the first simulated) come in ``first``,
        also when the whole deployment lies before it (``deploy_years: 1`` from the base year invests all in ``first``)."""
        last = min(self.start_year + self.deploy_years - 1, self.end_year)
        if year < max(first, self.start_year):
            return 0.0
        years = min(first, last) - self.start_year + 1 if year == first else int(year <= last)
        return self.total_cny / self.deploy_years * years

    def outstanding(self, now: float, first: int) -> float:
        """City-wide credit principal outstanding at decimal year ``now``, on the fund's schedule."""
        issued = first + np.arange(max(0, round((now - first) * 12))) / 12.0
        amount = np.array([self.tranche(int(t), first) for t in issued]) * self.credit_ratio * MONTH
        return float((amount * np.clip(1.0 - (now - issued) / self.credit_years, 0.0, 1.0)).sum())

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if not self.active(model.year):
            return
        first, scale = model.start_year + 1, model.params.scale * model.params.fund_deployment_share
        effects.zone_appeal[[model.geo.zone_ids.index(z) for z in self.zones or model.geo.zone_ids]] += self.appeal
        effects.add_spend(self.credit_spread * self.outstanding(model.year, first) * scale * MONTH)
        tickets = model.rng.poisson(self.tranche(int(model.year), first) * scale / self.ticket_cny * MONTH)
        rows = np.flatnonzero(self.targets(model))
        if tickets and len(rows):
            weight = model.state.firms.revenue[rows] / model.state.firms.revenue[rows].sum()
            chosen = model.rng.choice(rows, size=tickets, p=weight)
            brought = self.ticket_cny * (1.0 + self.credit_ratio * self.credit_additionality) * model.params.equity_additionality
            np.add.at(effects.funding, chosen, brought * grant_additionality(model, chosen))
            effects.add_spend(tickets * self.ticket_cny)


class ComputeSite(BaseModel):
    """One compute build-out step: PFLOPS coming online in a year, at an anchor."""

    model_config = ConfigDict(extra="forbid")
    year: Int = Field(ge=2000, le=2100)
    pflops: Float = Field(gt=0, le=1e7)
    anchor: str = Field("linping_compute_town", description="id of an anchors-layer point where it stands")


class ComputeBuildout(ScenarioLever):
    """Compute build-out: PFLOPS coming online by year and where.

    Changes: adds compute centres to the state at the start of their year,
    which raises supply and lowers the compute price every firm faces (a
    growth term of ``params.compute_weight`` x ``compute_cost_share``, central
    0 and drawn up to 1 x 0.15: nothing was measured). And, in that month, each reached firm adopts
    the new compute with the site's share of the supply (drawn from the levers'
    generator) and gains ``params.compute_adoption_lift`` of log sales
    through the ``growth`` channel: a level effect (cloud adoption: +6.9 % sales,
    docs/sources.md#s-ev-cloud), not a growth rate. By default the adopters
    are firms below the leader tier (public compute is offered to SMEs; leaders
    run their own) in the AI-intensive tracks, as for the vouchers. Default: from the 3000 P of 临平算力小镇
    (docs/sources.md#s-linping-compute) to the ≥ 5000 PFLOPS target by 2025
    (docs/sources.md#s-target-compute), in two steps
    placed at 临平 (ASSUMPTION on timing and place).
    """

    kind: Literal["compute_buildout"]
    responses: ClassVar[tuple[str, ...]] = ("compute_adoption_lift", "compute_cost_share", "compute_weight")
    sites: list[ComputeSite] = Field(
        default_factory=lambda: [ComputeSite(year=2024, pflops=1000), ComputeSite(year=2025, pflops=1000)]
    )
    tracks: list[TrackName] = Field(default_factory=lambda: list(AI_INTENSIVE), description="firms that may adopt public compute: AI-intensive tracks by default")
    tiers: list[TierName] = Field(
        default_factory=lambda: ["micro", "sme", "guishang"], description="firms that may adopt public compute: below the leader tier by default, as leaders run their own"
    )
    cost_cny_per_pflops: Float = Field(1e6, ge=0, le=1e10, description="ASSUMPTION (range ¥0.25-2.5 M per FP16 PFLOPS of capex, derived in docs/levers.md): spent in the year a site comes online")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        for site in self.sites:
            if self.starts_now(model, site.year):
                effects.add_spend(site.pflops * self.cost_cny_per_pflops * model.params.scale)
                compute = model.state.compute
                share = site.pflops / (float(compute.pflops[compute.alive].sum()) + site.pflops)
                rows = np.flatnonzero(self.targets(model))
                adopters = rows[model.rng.random(len(rows)) < share]
                effects.growth[adopters] += model.params.compute_adoption_lift / MONTH
                model.state.compute.append(
                    pflops=np.array([site.pflops]), cell=np.array([model.geo.anchor_cells[site.anchor]]), online=np.array([float(site.year)])
                )


LeverSpec = Annotated[
    ComputeVouchers | ModelSubsidies | VisionFund | ComputeBuildout | Parks | Talent | SmartOM,
    Field(discriminator="kind"),
]
LEVER_CLASSES: dict[str, type[ScenarioLever]] = {
    cls.model_fields["kind"].annotation.__args__[0]: cls
    for cls in (ComputeVouchers, ModelSubsidies, VisionFund, ComputeBuildout, Parks, Talent, SmartOM)
}
KINDS = tuple(LEVER_CLASSES)

