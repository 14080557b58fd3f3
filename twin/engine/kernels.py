"""Compiled inner loops (numba) where numpy would need a sequential scan or big temporaries.

Weighted draws walk a guide table item by item. Keyed uniforms for the
common random numbers (:mod:`twin.engine.streams`) hash (key, id, draw
index) with splitmix64 in one pass, with no temporaries; the synthesis still
passes a seeded ``numpy.random.Generator`` to the guide-table draws. Keyed
draws come fused with what consumes them where that saves a pass (float32
Gumbel uniforms, two 32-bit events from one hash, the normal shocks of
growth) and the commute-scored choice is one pass per chooser.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .compiled import kernel, threaded

SLICES = 64
"""Kernels that reduce or compact a table cut it into this many slices whatever the number of threads, and
combine the slices in order, so that their sums and row orders do not depend on the threads."""


@kernel
def _pick(rng, cdf: np.ndarray, guide: np.ndarray) -> int:
    """One inverse-CDF draw through the guide table (see choice.WeightedSampler)."""
    u = rng.random()
    idx = guide[int(u * guide.shape[0])]
    while cdf[idx] <= u:
        idx += 1
    return idx


@kernel
def draw_indices(rng, cdf: np.ndarray, guide: np.ndarray, n: int) -> np.ndarray:
    """``n`` guide-table draws (indices into the sampler's items)."""
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = _pick(rng, cdf, guide)
    return out


@kernel
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


@kernel
def guide_table(cdf: np.ndarray, bins: int) -> np.ndarray:
    """For each of ``bins`` equal bins b, the number of cdf values <= b / bins.

    The same as ``np.searchsorted(cdf, np.arange(bins) / bins, side="right")``
    for a sorted cdf (tests/test_choice.py checks it), item by item: each
    item fills the bins from the one after the previous item's to its own
    first bin at or above it, so the loop's length follows the items, not a
    per-bin test the processor cannot predict (the job sampler is rebuilt
    every month; measured a third faster than a merge over the bins).
    """
    out = np.empty(bins, np.int32)  # half the cache footprint of int64: every draw reads one entry at random
    start = 0
    for i in range(cdf.shape[0]):
        end = bins  # a value at or above 1 is above every bin's lower edge
        if cdf[i] < 1.0:
            end = min(int(np.ceil(cdf[i] * bins)), bins)  # the first b with b / bins >= cdf[i], up to rounding:
            while end > 0 and (end - 1) / bins >= cdf[i]:
                end -= 1
            while end < bins and end / bins < cdf[i]:
                end += 1
        out[start:end] = i
        start = max(start, end)
    out[start:] = cdf.shape[0]
    return out


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


@kernel
def lookup(table: np.ndarray, codes: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
    """``table[codes]``, or ``table[codes[at]]``: one pass, without numpy's conversion of small integer codes to
    pointer-sized indices or the intermediate ``codes[at]`` (levers ask this of every firm every month)."""
    n = codes.shape[0] if at is None else at.shape[0]
    out = np.empty(n, table.dtype)
    for i in range(n):
        out[i] = table[codes[i] if at is None else codes[at[i]]]
    return out


@kernel
def add_at(target: np.ndarray, index: np.ndarray, value: float) -> None:
    """``np.add.at(target, index, value)`` for one scalar value: the same sums in the same order, without numpy's
    slow generic path (several times slower than this loop at tens of thousands of items a month)."""
    for i in range(index.shape[0]):
        target[index[i]] += value


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


@kernel(inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's finalizer: a bijective 64-bit mix with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * M1
    z = (z ^ (z >> np.uint64(27))) * M2
    return z ^ (z >> np.uint64(31))


LOW32 = np.float32(np.finfo(np.float32).tiny)
HIGH32 = np.float32(1.0) - np.finfo(np.float32).epsneg
"""float32 uniforms are clamped into [LOW32, HIGH32]: rounding may reach 0 or 1, where Gumbel noise is infinite."""


@kernel(inline="always")
def _row_key(key: np.uint64, uid: np.int64) -> np.uint64:
    """The stream of one id under one key."""
    return mix64(key ^ (np.uint64(uid) * GOLDEN))


@kernel(inline="always")
def _uniform(row: np.uint64, j: int) -> float:
    """Draw j of a row stream: the top 53 bits of mix64(row + (j + 1) * golden), in (0, 1)."""
    bits = mix64(row + np.uint64(j + 1) * GOLDEN) >> np.uint64(11)
    return (np.float64(np.int64(bits)) + 0.5) * 1.1102230246251565e-16  # via int64: numba's uint64->float is slow


@kernel
def ndtri(p: float) -> float:
    """The standard normal quantile at p in (0, 1): Wichura's algorithm AS 241 (PPND16), as R's qnorm uses.

    Relative error about 1e-16, and several times faster inside a kernel
    than a call into SciPy's ndtri (tests/test_crn.py compares the two):
    one rational function in the centre, a logarithm and a square root in the tails.
    """
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r
                       + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                     + 133.14166789178437745) * r + 3.387132872796366608) / (
            ((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r
                 + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
             + 42.313330701600911252) * r + 1.0)
    r = np.sqrt(-np.log(p if q < 0 else 1.0 - p))
    if r <= 5.0:
        r -= 1.6
        value = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r + 0.24178072517745061177) * r
                     + 1.27045825245236838258) * r + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                  + 4.6303378461565452959) * r + 1.42343711074968357734) / (
            ((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r + 0.0151986665636164571966) * r
                 + 0.14810397642748007459) * r + 0.68976733498510000455) * r + 1.6763848301838038494) * r
             + 2.05319162663775882187) * r + 1.0)
    else:
        r -= 5.0
        value = (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r + 0.0012426609473880784386) * r
                     + 0.026532189526576123093) * r + 0.29656057182850489123) * r + 1.7848265399172913358) * r
                  + 5.4637849111641143699) * r + 6.6579046435011037772) / (
            ((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r + 1.8463183175100546818e-5) * r
                 + 7.868691311456132591e-4) * r + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
             + 0.59983220655588793769) * r + 1.0)
    return -value if q < 0 else value


@kernel(inline="always")
def keyed_uniform(key: np.uint64, uid: np.int64) -> float:
    """The first keyed uniform of an id: the value of ``keyed_uniforms(key, [uid], 1)``, for kernels that draw as they go."""
    return _uniform(_row_key(key, uid), 0)


@kernel(inline="always")
def keyed_normal(key: np.uint64, uid: np.int64) -> float:
    """The first keyed uniform of an id, as a standard normal (inverse CDF)."""
    return ndtri(keyed_uniform(key, uid))


@kernel(inline="always")
def keyed_halves(key: np.uint64, uid: np.int64) -> tuple[np.uint64, np.uint64]:
    """Two independent 32-bit draws of an id from one hash: the high and low halves of its row stream.

    For monthly events of a whole population (talent separating, moving
    home) a 32-bit resolution is plenty, and one hash per agent serves two
    independent events; a comparison with ``p * 2**32`` is an event of
    probability p.
    """
    row = _row_key(key, uid)
    return row >> np.uint64(32), row & np.uint64(0xFFFFFFFF)


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


@kernel
def whole_group_fits(groups: np.ndarray, need: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Whether each request's group, all its requests together, needs no more than ``room``: the test of
    ``np.bincount(groups, need)[groups] <= room`` with the same sums in the same order, but over a hash table sized
    to the requests rather than an array sized to the largest group id (half a million cells: fresh pages every month)."""
    n = groups.shape[0]
    bits = 4
    while (1 << bits) < 2 * n:
        bits += 1
    keys = np.full(1 << bits, -1, np.int64)
    sums = np.zeros(1 << bits)
    slot = np.empty(n, np.int64)
    for i in range(n):
        h = (np.uint64(groups[i]) * GOLDEN) >> np.uint64(64 - bits)
        while keys[h] != -1 and keys[h] != groups[i]:
            h = (h + np.uint64(1)) & np.uint64((1 << bits) - 1)
        keys[h] = groups[i]
        sums[h] += need[i]
        slot[i] = h
    out = np.empty(n, np.bool_)
    for i in range(n):
        out[i] = sums[slot[i]] <= room[i]
    return out


@kernel
def prefix_fits(groups: np.ndarray, need: np.ndarray, room: np.ndarray) -> np.ndarray:
    """For requests sorted by group: accept each while its group's running need fits the group's ``room`` (a 1e-9
    tolerance), and after a group's first refusal refuse the rest of it. One pass instead of eight numpy ones."""
    out = np.empty(groups.shape[0], np.bool_)
    used, refused = 0.0, False
    for i in range(groups.shape[0]):
        if i == 0 or groups[i] != groups[i - 1]:
            used, refused = 0.0, False
        used += need[i]
        refused = refused or used > room[i] + 1e-9
        out[i] = not refused
    return out


@kernel(inline="always")
def hypot32(dx: np.float32, dy: np.float32) -> np.float32:
    """float32 hypot as glibc's hypotf computes it (the square root in double, rounded once), without the call.

    Four times faster than the library call, and the same bits as np.hypot on
    float32 (checked on two million pairs); float32 steps of a few hundred km
    cannot overflow.
    """
    return np.float32(np.sqrt(np.float64(dx) * np.float64(dx) + np.float64(dy) * np.float64(dy)))


@kernel(inline="always")
def centre_km(cell: np.int64, cols: np.int64, km: float) -> tuple[np.float32, np.float32]:
    """A cell's centre in km from the grid origin, with the bits of Geography.centre_km: arithmetic instead of two
    look-ups per candidate into half-million-cell tables."""
    return np.float32((cell % cols + 0.5) * km), np.float32((cell // cols + 0.5) * km)


@kernel
def cell_centres(cells: np.ndarray, cols: int, cell_km: float) -> np.ndarray:
    """(x, y) km of each cell's centre, one row per cell (:func:`centre_km`): computed, where reading
    Geography.centre_km at scattered cells would miss the cache twice per cell."""
    out = np.empty((cells.shape[0], 2), np.float32)
    for i in range(cells.shape[0]):
        out[i, 0], out[i, 1] = centre_km(cells[i], cols, cell_km)
    return out


@threaded(lambda origin, cand, *_: cand.size)
def near_choice(origin, cand, centre_of, score_of, cols, cell_km, cost, max_km, gumbel):  # noqa: ANN001, ANN201 (numba arrays)
    """Each row's logit pick among candidates ``cand`` and whether it is in reach (see talent.choose_near).

    Utility is ``score_of[c] - cost * km`` in float32 (-inf beyond
    ``max_km``; no commute from an origin of -1), less the Gumbel term
    ``gumbel`` = log(-log u); the first maximum wins, as numpy's argmax.
    Cells are row-major on a grid ``cols`` wide with ``cell_km`` sides;
    ``centre_of`` holds each candidate item's centre in km, one (x, y) row
    per item (:func:`cell_centres`), or is None when the candidates are
    cells themselves (homes: their centres are computed, which saves a
    look-up). A small table of centres, made once per item, spares each
    candidate the integer division of its cell's centre (measured: a quarter
    faster for job search, where 45,000 firms make 400,000 candidates). One
    pass per row instead of a dozen (n, k) temporaries.
    """
    n, k = cand.shape
    pick = np.empty(n, np.int64)
    reach = np.empty(n, np.bool_)
    for i in prange(n):
        o = origin[i]
        ox, oy = centre_km(max(o, 0), cols, cell_km)
        best, col, far_best = np.float32(-np.inf), 0, False
        for j in range(k):
            km = np.float32(0.0)
            if o >= 0:  # newcomers choosing a home have no commute yet: no centre to compute
                if centre_of is None:
                    cx, cy = centre_km(cand[i, j], cols, cell_km)
                else:
                    cx, cy = centre_of[cand[i, j], 0], centre_of[cand[i, j], 1]
                km = hypot32(ox - cx, oy - cy)
            far = km > max_km
            utility = np.float32(-np.inf) if far else score_of[cand[i, j]] - cost * km
            value = utility - gumbel[i, j]
            if value > best or j == 0:
                best, col, far_best = value, j, far
        pick[i] = cand[i, col]
        reach[i] = not far_best
    return pick, reach
