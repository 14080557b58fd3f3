"""Levers that act through places, people and demand: parks, talent policy and city contracts (smart_om).

Registered with the other kinds in ``twin.policy.levers.LEVER_CLASSES``; the conventions are those of
:mod:`twin.policy.levers` (amounts city-wide, scaled by ``params.scale``; spend booked with ``effects.add_spend``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..engine.effects import Effects
from ..engine.params import MONTH
from ..engine.values import Float, Int
from .hook import PolicyModel
from .lever_base import ScenarioLever, TierName, TrackName


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
    zones the parks lie in. Over the park's first year, reached firms within
    its radius gain ``params.park_productivity_lift`` of log sales once, in all
    (the ``growth`` channel: a level effect, not a growth rate), and reached
    firms elsewhere lose ``params.park_displacement`` of that yuan gain, pro
    rata (docs/sources.md#s-ev-parks: jobs displaced from elsewhere), so a
    park is not a pure addition and its city-wide net is (1 - displacement)
    of the gain. The lift reaches firms below the leader tier by default: the
    studies measure firms that enter parks, and a leader's headquarters in a
    park's radius (海康威视 in 滨江) predates it. Default: the five AI parks by 2025 (docs/sources.md#s-target-ai-parks;
    which five is not published, so the five named platforms are an
    ASSUMPTION).
    """

    kind: Literal["parks"]
    responses: ClassVar[tuple[str, ...]] = ("park_productivity_lift", "park_displacement")
    parks: list[Park] = Field(
        default_factory=lambda: [
            Park(anchor=a, year=2025)
            for a in ("iot_town_binjiang", "info_port_town_xiaoshan", "xianghu_future_community", "zijingang_sci_city", "future_sci_city")
        ]
    )
    appeal: Float = Field(0.3, ge=0, le=10, description="ASSUMPTION: logit utility added to locating in a zone with a new park")
    tiers: list[TierName] = Field(
        default_factory=lambda: ["micro", "sme", "guishang"],
        description="firms the productivity lift and the displacement reach: below the leader tier by default, as a leader's site predates the park",
    )
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
            if max(opens, model.start_year + 1) <= model.year < max(opens, model.start_year + 1) + 1:
                self._lift(model, effects, cell, park.radius_m)

    def _lift(self, model: PolicyModel, effects: Effects, cell: int, radius_m: float) -> None:
        """A month of a park's first-year productivity gain for reached firms in it, net of the sales it takes from reached firms elsewhere."""
        firms, p = model.state.firms, model.params
        rows = np.flatnonzero(self.targets(model))
        inside = model.geo.distance_km(np.full(len(rows), cell), firms.cell[rows]) * 1000 <= radius_m
        effects.growth[rows[inside]] += p.park_productivity_lift
        gained = firms.revenue[rows[inside]].sum() * p.park_productivity_lift * MONTH
        rest = firms.revenue[rows[~inside]].sum()
        if rest > 0:
            effects.growth[rows[~inside]] -= p.park_displacement * gained / rest / MONTH


class Talent(ScenarioLever):
    """Talent policy: in-migration incentives and retention (housing support counts as retention).

    Changes: the ``talent_inflow`` channel (multiplies in-migration by 1 +
    ``params.talent_inflow_gain``) and the ``talent_retention`` channel
    (divides the rates at which talent leave the city by 1 +
    ``params.talent_retention_gain``): responses within the evidence, short-run
    and weak in first-tier cities, retention unmeasured (docs/sources.md#s-ev-talent).
    Its budget is not published, so it books a
    flagged ``cost_cny_per_year`` (docs/levers.md) rather than nothing, which
    would make its revenue per yuan infinite.
    """

    kind: Literal["talent"]
    responses: ClassVar[tuple[str, ...]] = ("talent_inflow_gain", "talent_retention_gain")
    cost_cny_per_year: Float = Field(3e8, ge=0, le=1e11, description="ASSUMPTION (range ¥0.1-1 bn a year; docs/levers.md): living allowances, housing support and recruitment subsidies")

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if self.active(model.year):
            effects.talent_inflow *= 1.0 + model.params.talent_inflow_gain
            effects.talent_retention *= 1.0 + model.params.talent_retention_gain
            effects.add_spend(self.cost_cny_per_year * model.params.scale * MONTH)


class SmartOM(ScenarioLever):
    """城市智慧运维 and 揭榜挂帅: city contracts for vision products, won by firms.

    Changes: the ``sales`` and ``lasting`` channels of the winners only. Each
    January of an active year, ``contracts_per_year`` contracts of
    ``contract_cny`` (at the run's scale, a binomial count) go to firms drawn
    alike from the reached firms with at least ``min_revenue_cny`` (able to
    deliver). A winner's sales rise by the contract value, running off over
    about a year (Effects.sales); a young winner (younger than
    ``params.young_firm_years``) also keeps ``params.procurement_lasting_share``
    of it as lasting sales of its own (Norwegian start-ups about half, mature
    firms none; docs/sources.md#s-ev-procurement). Firms that win nothing get
    nothing. 城投集团 opens test sites for city-facility operation and 揭榜挂帅
    releases scenarios in 交通, 医疗, 教育, 文旅, 养老, 金融
    (docs/sources.md#s-lever-smart-om, docs/sources.md#s-lever-jiebang), mapped
    here to the tracks below. Neither the number nor the size of the
    contracts is published, so both are ASSUMPTIONs and the lever is off in
    the baseline: scenarios/smart_om.yaml adds it (docs/levers.md).
    """

    kind: Literal["smart_om"]
    responses: ClassVar[tuple[str, ...]] = ("procurement_lasting_share", "young_firm_years")
    contracts_per_year: Int = Field(40, ge=0, le=100_000, description="ASSUMPTION (range 10-100 a year): contracts awarded city-wide each year")
    contract_cny: Float = Field(5e6, ge=0, le=1e10, description="ASSUMPTION (range ¥1-20 M): value of one contract; the cost is contracts x value (¥200 M a year by default)")
    min_revenue_cny: Float = Field(5e6, ge=0, le=1e12, description="ASSUMPTION (range ¥1-20 M): revenue a firm needs to be able to deliver a contract")
    tracks: list[TrackName] = Field(default_factory=lambda: ["security", "industrial", "living", "driving", "medical", "technology"])

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        if not self.active(model.year) or abs(model.year % 1) > 1e-6:
            return
        firms, p = model.state.firms, model.params
        rows = np.flatnonzero(self.targets(model) & (firms.revenue >= self.min_revenue_cny))
        k = min(model.rng.binomial(self.contracts_per_year, min(p.scale, 1.0)), len(rows))
        winners = model.rng.choice(rows, size=k, replace=False) if k else rows[:0]
        effects.sales[winners] += self.contract_cny
        young = model.year - firms.born[winners] < p.young_firm_years
        effects.lasting[winners[young]] += p.procurement_lasting_share * self.contract_cny
        effects.add_spend(k * self.contract_cny)
