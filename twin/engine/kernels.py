"""Compiled inner loops (numba) where numpy would need a sequential scan or big temporaries.

Weighted draws walk a guide table item by item, and counting talent by
neighbourhood would otherwise build two million-long temporaries a month.
Keyed uniforms for the common random numbers (:mod:`twin.engine.streams`)
hash (key, id, draw index) with splitmix64 in one pass, with no temporaries;
the synthesis still passes a seeded ``numpy.random.Generator`` to the
guide-table draws. Keyed draws come fused with what consumes them where
that saves a pass (float32 Gumbel uniforms, rate thresholds) and the
commute-scored choice is one pass per chooser.
"""

from __future__ import annotations

import ctypes
import functools
import types
from collections.abc import Callable

import numpy as np
from numba import get_num_threads, njit, prange
from numba.extending import get_cython_function_address

PARALLEL_FROM = 1 << 15
"""Work items below which a threaded kernel runs on one thread: waking the other
threads costs more than they save (far more on a busy machine, where a
sleeping thread may wait a scheduler tick)."""


class Threaded:
    """A prange kernel compiled twice, threaded and serial; small inputs go to the serial copy.

    Every output element of these kernels depends on its own inputs only, so
    both copies give the same bytes. The serial copy gets its own qualified
    name because numba's on-disk cache tells functions apart by name, not by
    the parallel flag.
    """

    def __init__(self, fn: Callable, work: Callable[..., int]) -> None:
        serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
        serial.__qualname__ = fn.__qualname__ + "_serial"
        self.threaded, self.serial, self.work = njit(cache=True, parallel=True)(fn), njit(cache=True)(serial), work
        functools.update_wrapper(self, fn)

    def __call__(self, *args):  # noqa: ANN002, ANN204 (numba arguments)
        """Run the copy that suits the input's size."""
        return (self.threaded if self.work(*args) >= PARALLEL_FROM else self.serial)(*args)


def threaded(work: Callable[..., int]) -> Callable[[Callable], Threaded]:
    """Decorator making a :class:`Threaded` kernel; ``work(*args)`` counts its work items."""
    return lambda fn: Threaded(fn, work)


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
def cdf_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the positive weights and their cumulative share, the last set to inf so no draw can pass it.

    Two passes instead of numpy's five; the job sampler is rebuilt every month.
    The sums run in order, as np.cumsum's do.
    """
    n = 0
    for i in range(weights.shape[0]):
        n += weights[i] > 0
    keep = np.empty(n, np.int64)
    cdf = np.empty(n)
    total, k = 0.0, 0
    for i in range(weights.shape[0]):
        if weights[i] > 0:
            total += weights[i]
            keep[k], cdf[k] = i, total
            k += 1
    for k in range(n):
        cdf[k] = cdf[k] / total
    if n:
        cdf[n - 1] = np.inf
    return keep, cdf


@njit(cache=True)
def guide_table(cdf: np.ndarray) -> np.ndarray:
    """For bin b of len(cdf) equal bins, the number of cdf values <= b / len(cdf).

    The same as ``np.searchsorted(cdf, np.arange(n) / n, side="right")`` for
    a sorted cdf, by one merge of the two sorted sequences instead of a
    binary search per bin (the job sampler is rebuilt every month).
    """
    n = cdf.shape[0]
    out = np.empty(n, np.int64)
    idx = 0
    for b in range(n):
        edge = b / n
        while idx < n and cdf[idx] <= edge:
            idx += 1
        out[b] = idx
    return out


def count_by(index: np.ndarray, lookup: np.ndarray, alive: np.ndarray, size: int) -> np.ndarray:
    """``bincount(lookup[index[alive]], minlength=size)`` without the temporaries.

    Each thread counts its own slice into its own row, then the rows add up:
    whole counts, so the sum is exact in any order and the bytes do not
    depend on the threads.
    """
    parts = max(1, min(get_num_threads(), len(index) // PARALLEL_FROM))
    return _count_parts(index, lookup, alive, size, parts).sum(axis=0)


@njit(cache=True, parallel=True)
def _count_parts(index, lookup, alive, size, parts):  # noqa: ANN001, ANN201 (numba arrays)
    """:func:`count_by` of ``parts`` equal slices, one row each (numba will not cache a kernel that asks for the thread count)."""
    counts = np.zeros((parts, size), np.float64)
    step = -(-index.shape[0] // parts)
    for part in prange(parts):
        for i in range(part * step, min((part + 1) * step, index.shape[0])):
            if alive[i]:
                counts[part, lookup[index[i]]] += 1.0
    return counts


@threaded(lambda u, cdf, guide, items: u.size)
def pick_items(u: np.ndarray, cdf: np.ndarray, guide: np.ndarray, items: np.ndarray) -> np.ndarray:
    """The sampler's items that uniforms ``u`` (any shape) select, by guide-table inverse CDF.

    Kept apart from the hashing that makes ``u``: this tight loop overlaps
    its cache misses, which a loop fused with the hash serializes (measured:
    about 1.5x slower fused). The item look-up is fused in, which saves a
    single-threaded numpy gather. Each draw is independent, so prange cannot
    change a result.
    """
    flat = u.ravel()
    out = np.empty(flat.shape[0], items.dtype)
    m = guide.shape[0]
    for i in prange(flat.shape[0]):
        idx = guide[int(flat[i] * m)]
        while cdf[idx] <= flat[i]:
            idx += 1
        out[i] = items[idx]
    return out.reshape(u.shape)


@threaded(lambda employer, *_: len(employer))
def release_closed(employer: np.ndarray, firm_alive: np.ndarray, talent_alive: np.ndarray, wage: np.ndarray) -> None:
    """Live workers whose employer row is dead become seekers (firm -1, wage 0): one pass, in place."""
    for i in prange(employer.shape[0]):
        e = employer[i]
        if e >= 0 and talent_alive[i] and not firm_alive[e]:
            employer[i] = -1
            wage[i] = 0.0


M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's finalizer: a bijective 64-bit mix with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * M1
    z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


LOW32 = np.float32(np.finfo(np.float32).tiny)
HIGH32 = np.float32(1.0) - np.finfo(np.float32).epsneg
"""float32 uniforms are clamped into [LOW32, HIGH32]: rounding may reach 0 or 1, where Gumbel noise is infinite."""


@njit(cache=True, inline="always")
def _row_key(key: np.uint64, uid: np.int64) -> np.uint64:
    """The stream of one id under one key."""
    return mix64(key ^ (np.uint64(uid) * GOLDEN))


@njit(cache=True, inline="always")
def _uniform(row: np.uint64, j: int) -> float:
    """Draw j of a row stream: the top 53 bits of mix64(row + (j + 1) * golden), in (0, 1)."""
    bits = mix64(row + np.uint64(j + 1) * GOLDEN) >> np.uint64(11)
    return (np.float64(np.int64(bits)) + 0.5) * 1.1102230246251565e-16  # via int64: numba's uint64->float is slow


NDTRI = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(get_cython_function_address("scipy.special.cython_special", "ndtri"))
"""SciPy's inverse normal CDF as a C function: the very function behind ``scipy.special.ndtri``, so normals drawn
inside a kernel have the same bits. Kernels take it as an argument: numba will not cache a kernel that holds a
C pointer as a global."""


@njit(cache=True, inline="always")
def keyed_uniform(key: np.uint64, uid: np.int64) -> float:
    """The first keyed uniform of an id: the value of ``keyed_uniforms(key, [uid], 1)``, for kernels that draw as they go."""
    return _uniform(_row_key(key, uid), 0)


@njit(cache=True, inline="always")
def keyed_normal(key: np.uint64, uid: np.int64, ndtri) -> float:  # noqa: ANN001 (a C function)
    """The first keyed uniform of an id, as a standard normal (inverse CDF)."""
    return ndtri(keyed_uniform(key, uid))


@threaded(lambda key, ids, k: len(ids) * k)
def keyed_uniforms(key: np.uint64, ids: np.ndarray, k: int) -> np.ndarray:
    """(n, k) uniforms in (0, 1): draw j of id i is mix64(mix64(key ^ id * golden) + (j + 1) * golden), top 53 bits.

    Each value depends on its own (key, id, j) only, so the threads (prange)
    cannot change a result: the same bytes on any number of cores.
    """
    n = ids.shape[0]
    out = np.empty((n, k), np.float64)
    for i in prange(n):
        row = _row_key(key, ids[i])
        for j in range(k):
            out[i, j] = _uniform(row, j)
    return out


@threaded(lambda key, ids, k: len(ids) * k)
def keyed_uniforms32(key: np.uint64, ids: np.ndarray, k: int) -> np.ndarray:
    """:func:`keyed_uniforms` rounded to float32 and clamped into [LOW32, HIGH32], for Gumbel noise, without the float64 array."""
    n = ids.shape[0]
    out = np.empty((n, k), np.float32)
    for i in prange(n):
        row = _row_key(key, ids[i])
        for j in range(k):
            out[i, j] = min(max(np.float32(_uniform(row, j)), LOW32), HIGH32)
    return out


@threaded(lambda key, ids, p, among: len(ids))
def keyed_below(key: np.uint64, ids: np.ndarray, p: float, among: np.ndarray) -> np.ndarray:
    """Whether each id is ``among`` those at risk and its first keyed uniform is below ``p``: an event at rate p.

    One pass, without the float64 array, and no hashing for ids not at risk.
    """
    out = np.empty(ids.shape[0], np.bool_)
    for i in prange(ids.shape[0]):
        out[i] = among[i] and _uniform(_row_key(key, ids[i]), 0) < p
    return out


@njit(cache=True, inline="always")
def hypot32(dx: np.float32, dy: np.float32) -> np.float32:
    """float32 hypot as glibc's hypotf computes it (the square root in double, rounded once), without the call.

    Four times faster than the library call, and the same bits as np.hypot on
    float32 (checked on two million pairs); float32 steps of a few hundred km
    cannot overflow.
    """
    return np.float32(np.sqrt(np.float64(dx) * np.float64(dx) + np.float64(dy) * np.float64(dy)))


@njit(cache=True, inline="always")
def centre_km(cell: np.int64, cols: np.int64, km: float) -> tuple[np.float32, np.float32]:
    """A cell's centre in km from the grid origin, with the bits of Geography.centre_km: arithmetic instead of two
    look-ups per candidate into half-million-cell tables."""
    return np.float32((cell % cols + 0.5) * km), np.float32((cell // cols + 0.5) * km)


@threaded(lambda origin, cand, *_: cand.size)
def near_choice(origin, cand, cell_of, score_of, cols, cell_km, cost, max_km, gumbel):  # noqa: ANN001, ANN201 (numba arrays)
    """Each row's logit pick among candidates ``cand`` and whether it is in reach (see talent.choose_near).

    Utility is ``score_of[c] - cost * km`` in float32 (-inf beyond
    ``max_km``; no commute from an origin of -1), less the Gumbel term
    ``gumbel`` = log(-log u); the first maximum wins, as numpy's argmax.
    Cells are row-major on a grid ``cols`` wide with ``cell_km`` sides.
    One pass per row instead of a dozen (n, k) temporaries.
    """
    n, k = cand.shape
    pick = np.empty(n, np.int64)
    reach = np.empty(n, np.bool_)
    for i in prange(n):
        o = origin[i]
        ox, oy = centre_km(max(o, 0), cols, cell_km)
        best, col, far_best = np.float32(-np.inf), 0, False
        for j in range(k):
            cx, cy = centre_km(cell_of[cand[i, j]], cols, cell_km)
            km = hypot32(ox - cx, oy - cy) if o >= 0 else np.float32(0.0)
            far = km > max_km
            utility = np.float32(-np.inf) if far else score_of[cand[i, j]] - cost * km
            value = utility - gumbel[i, j]
            if value > best or j == 0:
                best, col, far_best = value, j, far
        pick[i] = cand[i, col]
        reach[i] = not far_best
    return pick, reach
