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
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from layers import InputError

from ..engine.effects import Effects
from ..engine.kernels import lookup
from ..engine.params import INTENSITY, MONTH, TIERS, TRACK_COMPUTE_INTENSITY, TRACK_IDS
from ..engine.values import Float, Int
from .hook import PolicyModel

AI_INTENSIVE = [t for t, v in TRACK_COMPUTE_INTENSITY.items() if v >= 0.6]

TrackName = Literal[TRACK_IDS]  # type: ignore[valid-type]
TierName = Literal[TIERS]  # type: ignore[valid-type]


class ScenarioLever(BaseModel):
    """A lever declared in a scenario file: the fields every kind has, when it acts and which firms it reaches.

    Every kind satisfies the policy hook's :class:`twin.policy.hook.Lever` protocol (``apply(model, effects)``).
    """

    model_config = ConfigDict(extra="forbid")
    responses: ClassVar[tuple[str, ...]] = ()
    """The lever-response parameters (Params fields declared with ``_response``) its effect rests on: drawn per member,
    graded in docs/levers.md; none means the effect rests on no evidence."""

    start_year: Int = Field(2023, ge=2000, le=2100)
    end_year: Int = Field(2035, ge=2000, le=2100)
    zones: list[str] = Field(default_factory=list, description="zone ids (gis_data/zones.csv); empty = all")
    districts: list[str] = Field(default_factory=list, description="district names, e.g. 滨江区; empty = all")
    tracks: list[TrackName] = Field(default_factory=list, description="tracks; empty = all")
    tiers: list[TierName] = Field(default_factory=list, description="firm tiers; empty = all")

    @model_validator(mode="after")
    def _years_ordered(self) -> ScenarioLever:
        if self.end_year < self.start_year:
            raise ValueError(f"end_year ({self.end_year}) is before start_year ({self.start_year})")
        return self

    def active(self, year: float) -> bool:
        """True while the model's current month lies in [start_year, end_year]."""
        return self.start_year <= year < self.end_year + 1

    def check(self, model: PolicyModel, where: str) -> None:
        """Reject zone, district or anchor names the model's layers do not have."""
        for key, known in (("zones", model.geo.zone_ids), ("districts", model.geo.district_names)):
            unknown = sorted(set(getattr(self, key)) - set(known))
            if unknown:
                raise InputError(model.source or "scenario", f"{where}.{key}", f"unknown {key[:-1]}(s) {', '.join(unknown)}; known: {', '.join(known)}")
        for key in ("sites", "parks"):  # the lever kinds that place things at anchors
            for i, item in enumerate(getattr(self, key, ())):
                if item.anchor not in model.geo.anchor_cells:
                    raise InputError(model.source or "scenario", f"{where}.{key}.{i}.anchor", f"unknown anchor {item.anchor!r}")

    def targets(self, model: PolicyModel) -> np.ndarray:
        """Boolean mask over firm rows: live firms this lever reaches."""
        firms, geo = model.state.firms, model.geo
        mask = firms.alive.copy()
        if self.zones:
            mask &= _member(geo.zone, [geo.zone_ids.index(z) for z in self.zones], len(geo.zone_ids), firms.cell)
        if self.districts:
            mask &= _member(geo.district, [geo.district_names.index(d) for d in self.districts], len(geo.district_names), firms.cell)
        if self.tracks:
            mask &= _member(firms.track, [TRACK_IDS.index(t) for t in self.tracks], len(TRACK_IDS))
        if self.tiers:
            mask &= _member(model.params.tier(firms.revenue), [TIERS.index(t) for t in self.tiers], len(TIERS))
        return mask

    def starts_now(self, model: PolicyModel, year: int | None = None) -> bool:
        """True in the first month of ``year`` (default: start_year), for one-off actions.

        Actions dated in the base year or before happen in the first simulated month.
        """
        first = max(self.start_year if year is None else year, model.start_year + 1)
        return abs(model.state.year - first) < 1e-6


def _member(codes: np.ndarray, wanted: list[int], size: int, at: np.ndarray | None = None) -> np.ndarray:
    """Which codes (in -1 .. size-1; -1 is outside every group), or which ``codes[at]``, are in ``wanted``: a table look-up, cheaper each month than np.isin."""
    table = np.zeros(size + 1, bool)  # the extra last slot answers code -1
    table[wanted] = True
    return lookup(table, codes, at)


class ComputeVouchers(ScenarioLever):
    """算力券: pays a share of eligible firms' compute cost, which lowers the compute price they face.

    Changes: the ``compute_subsidy`` channel (share of compute cost paid) of
    eligible firms, so their growth loses less to compute cost. The money
    paid is counted once, through the price: it is booked as spend, not also
    added to the firms' funding. Each firm gets at most
    ``max_share`` of its cost and ``max_per_firm_cny`` a year; if claims pass
    the budget, all are scaled down alike. Sources: ¥50 M a year
    (docs/sources.md#s-lever-vouchers); ¥250 M a year, ≤ 30 % of cost, ≤ ¥8 M per firm
    from July 2024 (docs/sources.md#s-lever-vouchers-2024). By default SMEs in AI-intensive tracks.
    """

    kind: Literal["compute_vouchers"]
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
        paid = claim * scale
        effects.compute_subsidy[rows] = np.maximum(effects.compute_subsidy[rows], np.divide(paid, cost, out=np.zeros_like(paid), where=cost > 0))
        effects.add_spend(paid.sum() * MONTH)


class ModelSubsidies(ScenarioLever):
    """Large-model and specialised-model subsidies: one-off funding to model builders each year.

    Changes: the ``funding`` channel. At the start of each active year the
    largest firm of the targeted tracks receives the large-model training
    subsidy (up to ¥50 M for a > 100 B-parameter model that leads nationally,
    docs/sources.md#s-lever-large-model), and ``specialised_per_year`` other firms, drawn in proportion to
    revenue, receive up to ¥5 M each for models deployed in Hangzhou (≤ 10 a
    year, docs/sources.md#s-lever-specialised). Funding turns into revenue at ``params.funding_return``.
    """

    kind: Literal["model_subsidies"]
    responses: ClassVar[tuple[str, ...]] = ("funding_return", "funding_half_life_years")
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
        effects.funding[leader] += self.large_model_cny * min(scale, 1.0)
        effects.add_spend(self.large_model_cny * min(scale, 1.0))
        others = rows[rows != leader]
        k = min(model.rng.binomial(self.specialised_per_year, min(scale, 1.0)), len(others))
        if k:
            weight = firms.revenue[others] / firms.revenue[others].sum()
            chosen = model.rng.choice(others, size=k, replace=False, p=weight)
            effects.funding[chosen] += self.specialised_cny
            effects.add_spend(k * self.specialised_cny)


class VisionFund(ScenarioLever):
    """The ¥3 bn 中国视谷 fund: minority equity (with 1:1 credit) in firms in the target zones.

    Changes: the ``funding`` channel of firms it invests in, and the
    ``zone_appeal`` channel of the target zones. The fund deploys
    ``total_cny`` evenly over ``deploy_years`` from ``start_year``; tranches
    dated before the first simulated year are carried into it, so none is
    lost. Tickets of ``ticket_cny`` go to firms drawn in proportion to
    revenue among targeted SMEs and 规上 firms; equity paid in is spend. Each
    ticket brings ``credit_ratio`` times itself as low-interest credit: a
    loan, repaid evenly over ``credit_years``, so only the interest subsidy
    (``credit_spread`` a year on the scheduled principal outstanding) is
    spend, and only ``credit_additionality`` of the principal funds activity
    the firm would not have financed anyway. Sources: docs/sources.md#s-lever-fund,
    #s-lever-credit; the rest are ASSUMPTIONs argued in docs/levers.md.
    """

    kind: Literal["vision_fund"]
    responses: ClassVar[tuple[str, ...]] = ("funding_return", "funding_half_life_years")
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
        first, scale = model.start_year + 1, model.params.scale
        effects.zone_appeal[[model.geo.zone_ids.index(z) for z in self.zones or model.geo.zone_ids]] += self.appeal
        effects.add_spend(self.credit_spread * self.outstanding(model.year, first) * scale * MONTH)
        tickets = model.rng.poisson(self.tranche(int(model.year), first) * scale / self.ticket_cny * MONTH)
        rows = np.flatnonzero(self.targets(model))
        if tickets and len(rows):
            weight = model.state.firms.revenue[rows] / model.state.firms.revenue[rows].sum()
            chosen = model.rng.choice(rows, size=tickets, p=weight)
            np.add.at(effects.funding, chosen, self.ticket_cny * (1.0 + self.credit_ratio * self.credit_additionality))
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
    which raises supply and lowers the compute price every firm faces (and
    so lifts AI-intensive firms' growth). Default: from the 3000 P of 临平算力小镇
    (docs/sources.md#s-linping-compute) to the ≥ 5000 PFLOPS target by 2025
    (docs/sources.md#s-target-compute), in two steps
    placed at 临平 (ASSUMPTION on timing and place).
    """

    kind: Literal["compute_buildout"]
    sites: list[ComputeSite] = Field(
        default_factory=lambda: [ComputeSite(year=2024, pflops=1000), ComputeSite(year=2025, pflops=1000)]
    )
    cost_cny_per_pflops: Float = Field(1e6, ge=0, le=1e10, description="ASSUMPTION (range ¥0.25-2.5 M per FP16 PFLOPS of capex, derived in docs/levers.md): spent in the year a site comes online")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        for site in self.sites:
            if self.starts_now(model, site.year):
                effects.add_spend(site.pflops * self.cost_cny_per_pflops * model.params.scale)
                model.state.compute.append(
                    pflops=np.array([site.pflops]), cell=np.array([model.geo.anchor_cells[site.anchor]]), online=np.array([float(site.year)])
                )


class Park(BaseModel):
    """One park: floor space added around an anchor point."""

    model_config = ConfigDict(extra="forbid")
    anchor: str = Field(description="id of an anchors-layer point at the park's centre")
    floor_m2: Float = Field(5e5, gt=0, le=1e8, description="ASSUMPTION: 500,000 m² of floor space")
    radius_m: Float = Field(1500.0, ge=100, le=20_000)
    year: Int | None = Field(None, description="year it opens (default: the lever's start_year)")


class Parks(ScenarioLever):
    """Parks: designate or enlarge parks, adding floor space and drawing firms.

    Changes: adds ``floor_m2`` of capacity spread over the city cells within
    ``radius_m`` of each park's anchor from its opening year, records the park
    in the state, and adds ``appeal`` to the ``zone_appeal`` channel of the
    zones the parks lie in. Default: the five AI parks by 2025 (docs/sources.md#s-target-ai-parks;
    which five is not published, so the five named platforms are an
    ASSUMPTION).
    """

    kind: Literal["parks"]
    parks: list[Park] = Field(
        default_factory=lambda: [
            Park(anchor=a, year=2025)
            for a in ("iot_town_binjiang", "info_port_town_xiaoshan", "xianghu_future_community", "zijingang_sci_city", "future_sci_city")
        ]
    )
    appeal: Float = Field(0.3, ge=0, le=10, description="ASSUMPTION: logit utility added to locating in a zone with a new park")
    cost_cny_per_m2: Float = Field(4000.0, ge=0, le=1e6, description="ASSUMPTION (range ¥3000-6000 per m² of floor space built; docs/levers.md): spent in the year a park opens")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if not self.active(model.year):
            return
        geo, state = model.geo, model.state
        for park in self.parks:
            opens = park.year or self.start_year
            cell = geo.anchor_cells[park.anchor]
            if self.starts_now(model, opens):
                near = np.flatnonzero((geo.distance_km(np.full(geo.size, cell), np.arange(geo.size)) * 1000 <= park.radius_m) & (geo.district >= 0))
                floor = park.floor_m2 * model.params.scale
                state.capacity_m2[near] += floor / len(near)
                state.parks.append(cell=np.array([cell]), floor_m2=np.array([floor]), zone=np.array([geo.zone[cell]]), online=np.array([float(opens)]))
                effects.add_spend(floor * self.cost_cny_per_m2)
            if model.year >= max(opens, model.start_year + 1):
                effects.zone_appeal[geo.zone[cell]] += self.appeal


class Talent(ScenarioLever):
    """Talent policy: in-migration incentives and retention (housing support counts as retention).

    Changes: the ``talent_inflow`` channel (multiplies in-migration) and the
    ``talent_retention`` channel (divides the rates at which talent leave the
    city). ASSUMPTION: +20 % inflow and 20 % better retention by default; no
    published figure. Its budget is not published either, so it books a
    flagged ``cost_cny_per_year`` (docs/levers.md) rather than nothing, which
    would make its revenue per yuan infinite.
    """

    kind: Literal["talent"]
    inflow_multiplier: Float = Field(1.2, ge=0, le=10)
    retention_multiplier: Float = Field(1.2, gt=0, le=10)
    cost_cny_per_year: Float = Field(3e8, ge=0, le=1e11, description="ASSUMPTION (range ¥0.1-1 bn a year; docs/levers.md): living allowances, housing support and recruitment subsidies")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if self.active(model.year):
            effects.talent_inflow *= self.inflow_multiplier
            effects.talent_retention *= self.retention_multiplier
            effects.add_spend(self.cost_cny_per_year * model.params.scale * MONTH)


class SmartOM(ScenarioLever):
    """城市智慧运维 and 揭榜挂帅: demand pull from city operations and released application scenarios.

    Changes: the ``growth`` channel of firms in the targeted tracks (annual
    log growth added). 城投集团 opens test sites for city-facility operation
    (vision products: security, industrial, living); 揭榜挂帅 releases
    scenarios in 交通, 医疗, 教育, 文旅, 养老, 金融 (docs/sources.md#s-lever-smart-om,
    docs/sources.md#s-lever-jiebang), mapped here to
    driving, medical, living and technology. Neither its size nor its budget
    is published, so both are ASSUMPTIONs and the lever is off in the
    baseline: scenarios/smart_om.yaml adds it, and ``--compare`` shows its
    contribution with an interval (docs/levers.md).
    """

    kind: Literal["smart_om"]
    growth_per_year: Float = Field(0.02, ge=-1, le=1, description="ASSUMPTION (range 0-0.03 a year): annual log growth added to the targeted tracks")
    cost_cny_per_year: Float = Field(2e8, ge=0, le=1e11, description="ASSUMPTION (range ¥0.1-0.5 bn a year; docs/levers.md): city spending on the test sites and scenarios")
    tracks: list[TrackName] = Field(default_factory=lambda: ["security", "industrial", "living", "driving", "medical", "technology"])

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if self.active(model.year):
            effects.growth[self.targets(model)] += self.growth_per_year
            effects.add_spend(self.cost_cny_per_year * model.params.scale * MONTH)


LeverSpec = Annotated[
    ComputeVouchers | ModelSubsidies | VisionFund | ComputeBuildout | Parks | Talent | SmartOM,
    Field(discriminator="kind"),
]
LEVER_CLASSES: dict[str, type[ScenarioLever]] = {
    cls.model_fields["kind"].annotation.__args__[0]: cls
    for cls in (ComputeVouchers, ModelSubsidies, VisionFund, ComputeBuildout, Parks, Talent, SmartOM)
}
KINDS = tuple(LEVER_CLASSES)

