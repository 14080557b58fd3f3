"""The common part of every policy lever: when it acts, which firms it reaches, and how much of a grant is additional.

The lever kinds live in :mod:`twin.policy.levers` (money and compute) and
:mod:`twin.policy.levers_place` (parks, talent and demand); ``levers.LEVER_CLASSES`` is the one registry.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from layers import InputError

from ..engine.kernels import lookup
from ..engine.params import TIERS, TRACK_COMPUTE_INTENSITY, TRACK_IDS
from ..engine.values import Int
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
    """The Params lever-response fields (twin/engine/params.py, "policy response") this kind's effect rests on."""

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


def grant_additionality(model: PolicyModel, rows: np.ndarray) -> np.ndarray:
    """Share of a grant or equity yuan to each firm row that funds activity it would not otherwise finance: the small-firm
    response below the leader tier or when young, the large-firm one for a mature leader (docs/sources.md#s-ev-grants-rdd)."""
    firms, p = model.state.firms, model.params
    small = (firms.revenue[rows] < p.leader_threshold_cny) | (model.year - firms.born[rows] < p.young_firm_years)
    return np.where(small, p.grant_additionality_small, p.grant_additionality_large)


def _member(codes: np.ndarray, wanted: list[int], size: int, at: np.ndarray | None = None) -> np.ndarray:
    """Which codes (in -1 .. size-1; -1 is outside every group), or which ``codes[at]``, are in ``wanted``: a table look-up, cheaper each month than np.isin."""
    table = np.zeros(size + 1, bool)  # the extra last slot answers code -1
    table[wanted] = True
    return lookup(table, codes, at)
