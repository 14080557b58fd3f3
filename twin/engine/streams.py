"""Common random numbers: every draw of a monthly step comes from a counter-based stream.

A draw is a pure function of (seed, process, month, agent stable id, draw
index): the key ``(seed, process, month)`` is hashed once, each agent's id is
mixed into it with a splitmix64 finalizer and the draw index selects the
k-th value (:func:`twin.engine.kernels.keyed_uniforms`). No state is carried
from one draw to the next, so

- the same firm meets the same growth shock and exit draw in two scenarios run
  on the same seed, whatever else the scenarios changed (a lever moves only
  what it touches, and a comparison shows the lever, not noise);
- adding or removing an agent does not shift anybody else's draws;
- the same scenario and seed still give the same bytes.

Counts (births, arrivals) are drawn by inverse CDF from one keyed uniform, so
a slightly larger rate gives the same count or one more, and newborns get ids
from (month, index within the month) so the first ``n`` newborns of a month
are the same agents in both scenarios. Draws tied to no agent can use
:meth:`Streams.generator`, a Philox generator keyed the same way.

The base-year synthesis (:mod:`twin.engine.synth`) and the policy levers use
the model's seeded ``numpy.random.Generator`` instead: the synthesis is the
same in every scenario for one seed, and lever draws differ only between
scenarios whose levers differ.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import numpy as np
from scipy import special

from .kernels import HIGH32, LOW32, keyed_uniforms, keyed_uniforms32

MASK = (1 << 64) - 1
NEWBORN = 1 << 32
"""Ids of agents born in month m are (m + 1) * NEWBORN + index within the month; base-year ids stay below."""


def _mix(z: int) -> int:
    """splitmix64's finalizer on a Python int (the same as the compiled one)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def newborn_ids(month: int, n: int) -> np.ndarray:
    """Stable ids of the ``n`` agents born in ``month``: the same in every scenario whatever came before."""
    return (month + 1) * NEWBORN + np.arange(n, dtype=np.int64)


class Draws(Protocol):
    """What the engine's processes draw from: uniforms keyed by process and agent ids, and counts."""

    def uniform(self, process: str, ids: np.ndarray, k: int | None = None) -> np.ndarray:
        """One uniform in (0, 1) per id (shape (n,)), or k per id (shape (n, k))."""
        ...

    def uniform32(self, process: str, ids: np.ndarray, k: int) -> np.ndarray:
        """k uniforms per id as float32 in [kernels.LOW32, kernels.HIGH32] (Gumbel noise)."""
        ...

    def poisson(self, process: str, mean: float) -> int:
        """A Poisson count."""
        ...


class Streams:
    """Counter-based random streams of one seed (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._root = _mix(self.seed & MASK)
        self._process: dict[str, int] = {}  # each process's own root, made once: a month asks for twenty keys

    def key(self, process: str, month: int) -> np.uint64:
        """The 64-bit key of one process in one month (process names hash with CRC-32, stable across runs)."""
        if process not in self._process:
            self._process[process] = _mix(self._root ^ zlib.crc32(process.encode()))
        return np.uint64(_mix(self._process[process] ^ (int(month) & MASK)))

    def uniform(self, process: str, month: int, ids: np.ndarray, k: int | None = None) -> np.ndarray:
        """Uniforms in (0, 1) keyed by each id: shape (n,), or (n, k) for k draws per id."""
        out = keyed_uniforms(self.key(process, month), np.ascontiguousarray(ids, dtype=np.int64), 1 if k is None else k)
        return out[:, 0] if k is None else out

    def uniform32(self, process: str, month: int, ids: np.ndarray, k: int) -> np.ndarray:
        """:meth:`uniform` as clamped float32, made in one pass (the same values as :func:`clamp32` of them)."""
        return keyed_uniforms32(self.key(process, month), np.ascontiguousarray(ids, dtype=np.int64), k)

    def generator(self, process: str, month: int) -> np.random.Generator:
        """A Philox generator for draws tied to no agent, keyed by (seed, process, month)."""
        return np.random.Generator(np.random.Philox(key=int(self.key(process, month))))

    def poisson(self, process: str, month: int, mean: float) -> int:
        """A Poisson count by inverse CDF of one keyed uniform: monotone in ``mean`` for a fixed stream."""
        if mean <= 0:
            return 0
        return poisson_quantile(self.uniform(process, month, np.zeros(1, np.int64))[0], mean)

    def month(self, month: int) -> MonthDraws:
        """The draws of one month, as the engine's processes take them."""
        return MonthDraws(self, month)


class MonthDraws:
    """:class:`Streams` bound to one month (implements :class:`Draws`)."""

    def __init__(self, streams: Streams, month: int) -> None:
        self.streams, self.index = streams, int(month)

    def key(self, process: str) -> np.uint64:
        """The key of one process this month, for kernels that draw as they go (kernels.keyed_normal)."""
        return self.streams.key(process, self.index)

    def year_key(self, process: str) -> np.uint64:
        """The key of one process for this month's calendar year: a draw that holds for a firm all year (its growth variance)."""
        return self.streams.key(process, self.index // 12)

    def uniform(self, process: str, ids: np.ndarray, k: int | None = None) -> np.ndarray:
        """Keyed uniforms of this month."""
        return self.streams.uniform(process, self.index, ids, k)

    def uniform32(self, process: str, ids: np.ndarray, k: int) -> np.ndarray:
        """Keyed clamped float32 uniforms of this month."""
        return self.streams.uniform32(process, self.index, ids, k)

    def poisson(self, process: str, mean: float) -> int:
        """A keyed Poisson count of this month."""
        return self.streams.poisson(process, self.index, mean)

    def newborn_ids(self, n: int) -> np.ndarray:
        """Ids of this month's ``n`` newborns."""
        return newborn_ids(self.index, n)


class SequentialDraws:
    """A plain seeded generator behind the :class:`Draws` interface (ids only give the count).

    The base-year synthesis uses this: it is the same in every scenario, so
    it needs no keyed streams.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def uniform(self, process: str, ids: np.ndarray, k: int | None = None) -> np.ndarray:
        """Uniforms in (0, 1) from the generator."""
        u = self.rng.random(len(ids) if k is None else (len(ids), k))
        return np.maximum(u, np.finfo(np.float64).tiny)

    def uniform32(self, process: str, ids: np.ndarray, k: int) -> np.ndarray:
        """:meth:`uniform` as clamped float32."""
        return clamp32(self.uniform(process, ids, k))

    def poisson(self, process: str, mean: float) -> int:
        """A Poisson count from the generator."""
        return int(self.rng.poisson(max(mean, 0.0)))


def poisson_quantile(u: float, mean: float) -> int:
    """The smallest k with P(K <= k) >= u for K ~ Poisson(mean): ``scipy.stats.poisson.ppf(u, mean)`` by the same two
    special functions, without the distribution machinery (a third of a millisecond per call, three calls a month)."""
    k = np.ceil(special.pdtrik(u, mean))
    below = max(k - 1.0, 0.0)
    return int(below if special.pdtr(below, mean) >= u else k)


def clamp32(u: np.ndarray) -> np.ndarray:
    """Uniforms as float32 in [LOW32, HIGH32], where log(-log u) is finite."""
    return np.minimum(np.maximum(u.astype(np.float32), LOW32), HIGH32)


def as_draws(source: Draws | np.random.Generator) -> Draws:
    """Accept a ``numpy.random.Generator`` (the synthesis) where the engine takes :class:`Draws`."""
    return SequentialDraws(source) if isinstance(source, np.random.Generator) else source
