"""The policy hook: the channels through which levers act on the engine.

Each step the model hands a fresh :class:`Effects` to every lever's ``apply``
before the other processes run. A lever writes into the channels (or changes
the state, as a park adds floor space); the processes read the channels. A new
lever therefore needs no edit to the engine, only an object with ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from .model import VisionValleyModel


@dataclass
class Effects:
    """Policy channels for one step; all neutral when no lever acts."""

    growth: np.ndarray  # per firm row: annual log-growth added
    compute_subsidy: np.ndarray  # per firm row: share of compute cost paid by policy, 0..1
    zone_appeal: np.ndarray  # per zone: logit utility added to locating there
    funding: np.ndarray  # per firm row: CNY of subsidy, equity or credit received this month
    talent_inflow: float = 1.0  # multiplier on talent in-migration
    talent_retention: float = 1.0  # divisor on talent leaving the city
    births: float = 1.0  # multiplier on firm births

    @classmethod
    def neutral(cls, firm_rows: int, zones: int) -> "Effects":
        """Channels that change nothing."""
        return cls(np.zeros(firm_rows), np.zeros(firm_rows), np.zeros(zones), np.zeros(firm_rows))


class Lever(Protocol):
    """Anything with ``apply(model, effects)`` can steer the model."""

    def apply(self, model: "VisionValleyModel", effects: Effects) -> None:
        """Write this step's effects (and any state change) for the model's current year."""
