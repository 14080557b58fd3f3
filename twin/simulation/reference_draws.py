"""Where the reference model's chance comes from: its own seeded generator, or the engine's keyed streams.

The reference's rules take their draws one agent at a time through this small
interface. :class:`SeededDraws` serves them from the model's ``rng`` (the
model then agrees with the engine in distribution, tests/test_reference.py);
:class:`KeyedDraws` serves the very draws the engine takes for the same
agent, process and month (:mod:`twin.engine.streams`), so the two agree draw
for draw and tests/test_rules.py compares them agent by agent.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..engine.kernels import HIGH32, LOW32, keyed_halves
from ..engine.streams import Streams, newborn_ids
from .reference_agents import normal


class Draws(Protocol):
    """The draws of one month, asked for by process name and agent id."""

    def uniform(self, process: str, uid: int) -> float:
        """A uniform in (0, 1)."""

    def uniforms(self, process: str, uid: int, k: int) -> list[float]:
        """``k`` uniforms in (0, 1)."""

    def uniforms32(self, process: str, uid: int, k: int) -> list[float]:
        """``k`` uniforms rounded to float32 and kept from 0 and 1 (the Gumbel noise of a choice)."""

    def halves(self, process: str, uid: int) -> tuple[float, float]:
        """Two independent uniforms on a 2^-32 lattice (a worker's separation and home-move events)."""

    def normal(self, process: str, uid: int) -> float:
        """A standard normal."""

    def uniform_of_year(self, process: str, uid: int) -> float:
        """A uniform in (0, 1) that stays the agent's for the calendar year of the month (a firm's growth variance)."""

    def poisson(self, process: str, mean: float) -> int:
        """A Poisson count."""

    def newborn_ids(self, n: int) -> list[int]:
        """Stable ids for ``n`` agents born this month."""


class KeyedDraws:
    """The engine's keyed streams of one seed and month, one agent at a time."""

    def __init__(self, streams: Streams, month: int) -> None:
        self.streams, self.month = streams, int(month)

    def uniforms(self, process: str, uid: int, k: int) -> list[float]:
        """Draws 0..k-1 of the agent's stream under (seed, process, month)."""
        return self.streams.uniform(process, self.month, np.array([uid], np.int64), k)[0].tolist()

    def uniform(self, process: str, uid: int) -> float:
        """Draw 0 of the agent's stream."""
        return self.uniforms(process, uid, 1)[0]

    def uniforms32(self, process: str, uid: int, k: int) -> list[float]:
        """The stream's draws as float32, clamped where log(-log u) is finite."""
        return np.clip(np.float32(self.uniforms(process, uid, k)), LOW32, HIGH32).tolist()

    def halves(self, process: str, uid: int) -> tuple[float, float]:
        """The high and low 32 bits of the agent's stream hash, as fractions of 2^32."""
        high, low = keyed_halves(self.streams.key(process, self.month), np.int64(uid))
        return int(high) / 2.0**32, int(low) / 2.0**32

    def normal(self, process: str, uid: int) -> float:
        """The standard normal at the agent's first uniform."""
        return normal(self.uniform(process, uid))

    def uniform_of_year(self, process: str, uid: int) -> float:
        """The agent's uniform under (seed, process, calendar year of the month), as the engine's year keys take it."""
        return self.streams.uniform(process, self.month // 12, np.array([uid], np.int64))[0]

    def poisson(self, process: str, mean: float) -> int:
        """The engine's monthly count: the inverse Poisson CDF at the process's keyed uniform."""
        return self.streams.poisson(process, self.month, mean)

    def newborn_ids(self, n: int) -> list[int]:
        """Ids from (month, index within the month), as the engine gives them."""
        return newborn_ids(self.month, n).tolist()


class SeededDraws:
    """Draws from a seeded generator, one after another (the reference model's own chance)."""

    def __init__(self, rng: np.random.Generator, first_id: int) -> None:
        self.rng, self.next_id = rng, first_id
        self.year, self.of_year = -1, {}  # the calendar year drawn for, and its draws that last the year

    def at(self, month: int) -> SeededDraws:
        """These draws in ``month``: a new calendar year forgets the last year's lasting draws."""
        if month // 12 != self.year:
            self.year, self.of_year = month // 12, {}
        return self

    def uniform(self, process: str, uid: int) -> float:
        """A fresh uniform."""
        return max(float(self.rng.random()), 1e-300)

    def uniforms(self, process: str, uid: int, k: int) -> list[float]:
        """``k`` fresh uniforms."""
        return [self.uniform(process, uid) for _ in range(k)]

    def uniforms32(self, process: str, uid: int, k: int) -> list[float]:
        """``k`` fresh uniforms as clamped float32."""
        return np.clip(np.float32(self.uniforms(process, uid, k)), LOW32, HIGH32).tolist()

    def halves(self, process: str, uid: int) -> tuple[float, float]:
        """Two fresh uniforms."""
        return self.uniform(process, uid), self.uniform(process, uid)

    def normal(self, process: str, uid: int) -> float:
        """A fresh standard normal."""
        return float(self.rng.standard_normal())

    def uniform_of_year(self, process: str, uid: int) -> float:
        """A fresh uniform the first time in the year, the same one after."""
        if (process, uid) not in self.of_year:
            self.of_year[process, uid] = self.uniform(process, uid)
        return self.of_year[process, uid]

    def poisson(self, process: str, mean: float) -> int:
        """A fresh Poisson count."""
        return int(self.rng.poisson(max(mean, 0.0)))

    def newborn_ids(self, n: int) -> list[int]:
        """The next ``n`` unused ids."""
        self.next_id += n
        return list(range(self.next_id - n, self.next_id))
