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

from ..engine.values import Bool, Float, Int

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

    low: Float
    high: Float
    log: Bool = Field(False, description="sample on a log scale (low must be above 0)")

    @model_validator(mode="after")
    def _ordered(self) -> "Bounds":
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log scale needs low above 0")
        return self


class SeekLever(_Strict):
    """What may vary in one lever of the scenario."""

    lever: Int = Field(ge=0, description="position in the scenario's levers list (0 = the first)")
    fields: dict[str, Bounds] = Field(default_factory=dict, description="numeric lever fields and their ranges, e.g. budget_cny_per_year")
    start_year: tuple[Int, Int] | None = Field(None, description="[earliest, latest] start year; default: keep the lever's")
    zones: list[list[str]] = Field(default_factory=list, description="choices of the lever's target zones ([] = all zones); default: keep")
    optional: Bool = Field(True, description="the search may switch the lever off")


class Seek(_Strict):
    """Bounds and defaults of goal seeking."""

    levers: list[SeekLever] = Field(default_factory=list, description="what may vary; empty = every lever with the defaults above")
    probability: Float = Field(0.8, ge=0, le=1, description="required chance of meeting all three 2027 targets")
    trials: Int = Field(40, ge=1, le=100_000, description="lever settings to try")

    def bounds_problem(self, levers: list[BaseModel]) -> tuple[str, str] | None:
        """(where, what) of the first bound a lever field cannot take, or None: checked when the scenario is
        read, so a bound beyond a field's range fails there, not as the sampler's trial midway through a search."""
        for n, entry in enumerate(self.levers):
            lever = levers[entry.lever] if entry.lever < len(levers) else None  # a missing lever is named by the search
            for name, bounds in entry.fields.items() if lever is not None else ():
                problem = _field_problem(type(lever), name, bounds)
                if problem is not None:
                    return f"seek.levers.{n}.fields.{name}", problem
        return None


def _field_problem(kind: type[BaseModel], name: str, bounds: Bounds) -> str | None:
    """Why ``bounds`` do not fit the lever field ``name`` (a real-valued field, within its own range), or None."""
    field = kind.model_fields.get(name)
    if field is None or field.annotation is not float:
        return f"{kind.model_fields['kind'].annotation.__args__[0]} has no real-valued field {name!r} to vary"
    for rule in field.metadata:
        floor, ceiling = getattr(rule, "ge", None), getattr(rule, "le", None)
        above, below = getattr(rule, "gt", None), getattr(rule, "lt", None)
        if floor is not None and bounds.low < floor or above is not None and bounds.low <= above:
            return f"low {bounds.low:g} is below the field's range (it must be {'at least' if floor is not None else 'above'} {floor if floor is not None else above:g})"
        if ceiling is not None and bounds.high > ceiling or below is not None and bounds.high >= below:
            return f"high {bounds.high:g} is above the field's range (it must be {'at most' if ceiling is not None else 'below'} {ceiling if ceiling is not None else below:g})"
    return None
