"""Vectorized discrete choice: weighted sampling, Gumbel-max logit and capacity rationing.

These three kernels carry every decision in the engine, which is how choices
for a million agents stay free of Python loops: sample a few candidate cells
per chooser, add Gumbel noise to utilities and take the argmax (an exact
multinomial-logit draw), then ration scarce slots by a random rank within
each destination. Every kernel takes its randomness from
:class:`twin.engine.streams.Draws` keyed by the choosers' stable ids, so a
chooser meets the same candidates and the same noise in every scenario run on
one seed (common random numbers); the synthesis passes a plain generator.
"""

from __future__ import annotations

import numpy as np

from .kernels import cdf_table, draw_indices, guide_table, pick_items, prefix_fits, whole_group_fits
from .streams import Draws, SequentialDraws, as_draws


GUIDE_BINS = 4
"""Guide-table bins per item of a :class:`WeightedSampler` of up to ``GUIDE_LARGE`` items; larger ones get two."""
GUIDE_LARGE = 1 << 17


class WeightedSampler:
    """Draw indices in proportion to fixed non-negative weights.

    Inverse-CDF sampling with a guide table (Chen & Asau): the table sends
    each draw straight to the first item its equal-mass bin could hold, and a
    short scan finishes the search (in :mod:`twin.kernels`). Compared with a
    binary search over a large CDF, this replaces about log2(n) cache misses
    with two. A table of up to ``GUIDE_LARGE`` items has ``GUIDE_BINS`` bins
    per item: the scan then rarely takes a step, and a scan's unpredictable
    length, not the look-ups, was most of a draw's cost (measured: three
    times faster than one bin per item on the job sampler). Larger tables
    (homes and firm sites: 255,000 cells) get two bins per item, because
    their draws wait on memory: in a month's step, where other work has
    evicted them from the cache, two bins drew about 6 % faster than four. The
    bins do not change which item a uniform picks, only how fast it is found.
    """

    def __init__(self, items: np.ndarray, weights: np.ndarray) -> None:
        keep, self.cdf = cdf_table(np.asarray(weights, dtype=np.float64))
        if len(keep) == 0:
            raise ValueError("nothing to sample: every weight is zero")
        self.items = np.asarray(items)[keep]
        if self.items.dtype.kind in "iu" and (len(self.items) == 0 or self.items.max() < 2**31):
            self.items = self.items.astype(np.int32)  # row or cell indices: half the cache footprint of the random look-ups
        self.guide = guide_table(self.cdf, (GUIDE_BINS if len(self.cdf) <= GUIDE_LARGE else 2) * len(self.cdf))

    def draw(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """``size`` draws with replacement."""
        n = int(np.prod(size))
        return self.items[draw_indices(rng, self.cdf, self.guide, n)].reshape(size)

    def pick(self, u: np.ndarray) -> np.ndarray:
        """The items that uniforms ``u`` (any shape) select: inverse CDF, so keyed uniforms give keyed picks."""
        return pick_items(np.asarray(u, dtype=np.float64), self.cdf, self.guide, self.items)


def gumbel_argmax(utility: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column index of each row's logit choice, with Gumbel noise from float32 uniforms ``u`` (Draws.uniform32, same shape).

    Rows of all -inf choose column 0. Adds the noise in place, so the
    caller's array is consumed (and ``u`` too).
    """
    utility -= gumbel_log(u)
    return np.argmax(utility, axis=1)


def gumbel_log(u: np.ndarray) -> np.ndarray:
    """log(-log u) in place: minus a Gumbel draw, for float32 uniforms clamped away from 0 and 1 (Draws.uniform32)."""
    np.log(u, out=u)
    np.negative(u, out=u)
    return np.log(u, out=u)


def group_order(groups: np.ndarray, u: np.ndarray) -> np.ndarray:
    """An order that sorts items by group, within each group by the uniforms ``u`` (a random order).

    One argsort of a packed (group, random) key is several times faster than
    a two-key lexsort.
    """
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups) and (groups.min() < 0 or groups.max() >= 1 << 27):
        raise ValueError("group ids must lie in [0, 2**27)")
    return np.argsort((groups << 36) | (u * (1 << 36)).astype(np.int64))


def ration(
    groups: np.ndarray,
    need: np.ndarray,
    room: np.ndarray,
    draws: Draws | np.random.Generator,
    ids: np.ndarray | None = None,
    process: str = "ration",
) -> np.ndarray:
    """Accept requests in random order while each group's cumulative need fits its free amount.

    ``room`` is the free amount of each request's group (the same for every
    request of a group); returns a boolean mask over the requests. A request
    that does not fit is refused even if a later, smaller one would fit,
    which keeps the rule simple and order-independent in expectation. The
    order is keyed by the requesters' stable ``ids`` under ``process`` (the
    row numbers when no ids are given). A group whose whole demand fits
    takes every request in any order, so only oversubscribed groups are
    sorted.
    """
    if len(groups) == 0:
        return np.zeros(0, bool)
    need = np.asarray(need, dtype=np.float64)
    draws = as_draws(draws)
    # a plain generator draws for every request, so that its stream does not depend on which groups are short;
    # keyed draws depend on the id alone, so only the requests that need one are drawn
    u = draws.uniform(process, np.arange(len(groups))) if ids is None or isinstance(draws, SequentialDraws) else None
    mask = whole_group_fits(np.asarray(groups, np.int64), need, np.asarray(room, np.float64))
    short = np.flatnonzero(~mask)
    if len(short) == 0:
        return mask
    order = short[group_order(groups[short], draws.uniform(process, ids[short]) if u is None else u[short])]
    # a refused request must not make later ones in its group look cheaper: keep the prefix only
    mask[order] = prefix_fits(np.asarray(groups)[order], need[order], np.asarray(room, np.float64)[order])
    return mask
