"""The policy hook: what a lever may see of the model, and what it must provide.

A lever needs only a handful of the model's attributes, named by
:class:`PolicyModel`; so the policy stage never imports the model that runs
it, and any object with ``apply(model, effects)`` can steer the engine
without an edit to it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..engine.effects import Effects
from ..engine.geography import Geography
from ..engine.params import Params
from ..engine.state import State


class PolicyModel(Protocol):
    """The attributes of a running model that levers read or change."""

    state: State
    geo: Geography
    params: Params
    rng: np.random.Generator
    start_year: int

    @property
    def year(self) -> float:
        """The decimal year at the start of the month simulated next."""

    @property
    def source(self) -> str:
        """The scenario file the levers came from, for error messages ('' when none)."""


class Lever(Protocol):
    """Anything with ``apply(model, effects)`` can steer the model."""

    def apply(self, model: PolicyModel, effects: Effects) -> None:
        """Write this step's effects (and any state change) for the model's current year."""


__all__ = ["Effects", "Lever", "PolicyModel"]
