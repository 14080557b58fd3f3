"""Compiled inner loops (numba) where numpy would need a sequential scan or big temporaries.

Weighted draws walk a guide table item by item, and counting talent by
neighbourhood would otherwise build two million-long temporaries a month.
Keyed uniforms for the common random numbers (:mod:`twin.engine.streams`)
hash (key, id, draw index) with splitmix64 in one pass, with no temporaries;
the synthesis still passes a seeded ``numpy.random.Generator`` to the
guide-table draws. (Scoring candidates stays in numpy on purpose: its
gathers overlap their cache misses, which a fused loop serializes.)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _pick(rng, cdf: np.ndarray, guide: np.ndarray) -> int:
    """One inverse-CDF draw through the guide table (see choice.WeightedSampler)."""
    u = rng.random()
    idx = guide[int(u * guide.shape[0])]
    while cdf[idx] <= u:
        idx += 1
    return idx


@njit(cache=True)
def draw_indices(rng, cdf: np.ndarray, guide: np.ndarray, n: int) -> np.ndarray:
    """``n`` guide-table draws (indices into the sampler's items)."""
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = _pick(rng, cdf, guide)
    return out


@njit(cache=True)
def count_by(index: np.ndarray, lookup: np.ndarray, alive: np.ndarray, size: int) -> np.ndarray:
    """``bincount(lookup[index[alive]], minlength=size)`` without the temporaries."""
    out = np.zeros(size, np.float64)
    for i in range(index.shape[0]):
        if alive[i]:
            out[lookup[index[i]]] += 1.0
    return out


@njit(cache=True)
def pick_indices(u: np.ndarray, cdf: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """Guide-table draws for given uniforms (any shape; indices into the sampler's items)."""
    flat = u.ravel()
    out = np.empty(flat.shape[0], np.int64)
    m = guide.shape[0]
    for i in range(flat.shape[0]):
        idx = guide[int(flat[i] * m)]
        while cdf[idx] <= flat[i]:
            idx += 1
        out[i] = idx
    return out.reshape(u.shape)


M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's finalizer: a bijective 64-bit mix with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * M1
    z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, parallel=True)
def keyed_uniforms(key: np.uint64, ids: np.ndarray, k: int) -> np.ndarray:
    """(n, k) uniforms in (0, 1): draw j of id i is mix64(mix64(key ^ id * golden) + j * golden), top 53 bits.

    Each value depends on its own (key, id, j) only, so the threads (prange)
    cannot change a result: the same bytes on any number of cores.
    """
    n = ids.shape[0]
    out = np.empty((n, k), np.float64)
    for i in prange(n):
        base = mix64(key ^ (np.uint64(ids[i]) * GOLDEN))
        for j in range(k):
            bits = mix64(base + np.uint64(j + 1) * GOLDEN) >> np.uint64(11)
            out[i, j] = (np.float64(np.int64(bits)) + 0.5) * 1.1102230246251565e-16  # via int64: numba's uint64->float is slow
    return out
