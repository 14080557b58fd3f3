"""The ``seek:`` section of a scenario: which lever settings goal seeking (``--seek``) may try.

Every entry names a lever by its position in the scenario's ``levers`` list
and what may vary: numeric fields within ``[low, high]``, the start year
within a range, the target zones among given choices, and whether the lever
may be switched off. Without a ``seek:`` section (or with ``levers: []``),
every lever of the scenario may be switched off and start from the first
simulated year to 2027, and its money field (``MONEY_FIELDS``) ranges from 0
to twice the scenario's value.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

MONEY_FIELDS = {
    "compute_vouchers": "budget_cny_per_year",
    "model_subsidies": "large_model_cny",
    "vision_fund": "total_cny",
}
"""The field that sets each kind's public money, varied by default from 0 to twice its value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bounds(_Strict):
    """A numeric range a lever field may take."""

    low: float
    high: float
    log: bool = Field(False, description="sample on a log scale (low must be above 0)")

    @model_validator(mode="after")
    def _ordered(self) -> "Bounds":
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log scale needs low above 0")
        return self


class SeekLever(_Strict):
    """What may vary in one lever of the scenario."""

    lever: int = Field(ge=0, description="position in the scenario's levers list (0 = the first)")
    fields: dict[str, Bounds] = Field(default_factory=dict, description="numeric lever fields and their ranges, e.g. budget_cny_per_year")
    start_year: tuple[int, int] | None = Field(None, description="[earliest, latest] start year; default: keep the lever's")
    zones: list[list[str]] = Field(default_factory=list, description="choices of the lever's target zones ([] = all zones); default: keep")
    optional: bool = Field(True, description="the search may switch the lever off")


class Seek(_Strict):
    """Bounds and defaults of goal seeking."""

    levers: list[SeekLever] = Field(default_factory=list, description="what may vary; empty = every lever with the defaults above")
    probability: float = Field(0.8, ge=0, le=1, description="required chance of meeting all three 2027 targets")
    trials: int = Field(40, ge=1, le=100_000, description="lever settings to try")
    scale_targets: bool = Field(True, description="at params.scale < 1, judge the targets scaled by params.scale (else they cannot be met)")
