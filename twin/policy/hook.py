"""The policy hook: what a lever may see of the model, and what it must provide.

A lever needs only a handful of the model's attributes, named by
:class:`PolicyModel`; so the policy stage never imports the model that runs
it, and any object with ``apply(model, effects)`` can steer the engine
without an edit to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

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


def lever_labels(levers: Iterable[Any]) -> list[str]:
    """Each lever's label, ``kind#n`` with n its position among the levers of the same kind (from 0).

    The one label scheme of the tool: ``levers_set`` takes it, and metrics.csv, comparison.csv,
    attribution, seek and every summary print it. Counting within a kind (rather than the position in
    the whole list) keeps a label stable when a child scenario adds, removes or reorders levers of
    another kind, so ``levers_set: {vision_fund#0: ...}`` in a user's file keeps naming the same fund.
    A lever is a scenario entry (``kind`` attribute or key) or any object with ``apply`` (its class name).
    """
    seen: dict[str, int] = {}
    labels = []
    for lever in levers:
        kind = str(lever.get("kind")) if isinstance(lever, dict) else getattr(lever, "kind", type(lever).__name__)
        labels.append(f"{kind}#{seen.get(kind, 0)}")
        seen[kind] = seen.get(kind, 0) + 1
    return labels


__all__ = ["Effects", "Lever", "PolicyModel", "lever_labels"]
