"""Compiled inner loops (numba) where numpy would need a sequential scan or big temporaries.

Weighted draws walk a guide table item by item, and counting talent by
neighbourhood would otherwise build two million-long temporaries a month.
Randomness comes from the model's own ``numpy.random.Generator``, passed in,
so runs stay seeded. (Scoring candidates stays in numpy on purpose: its
gathers overlap their cache misses, which a fused loop serializes.)
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
