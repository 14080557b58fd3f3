"""The sampling kernels pick what inverse-CDF sampling picks, however the weights fall."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.engine.choice import WeightedSampler
from twin.engine.kernels import cdf_table, guide_table

weights = st.lists(st.one_of(st.integers(0, 5).map(float), st.floats(1e-9, 1e9)), min_size=1, max_size=300).filter(lambda w: sum(w) > 0)


@settings(max_examples=300, deadline=None)
@given(weights, st.integers(1, 7))
def test_guide_table_is_the_count_of_cdf_values_at_or_below_each_bin_edge(w: list[float], per_item: int) -> None:
    """Ties, zero weights and values landing exactly on a bin edge (small integer weights) included."""
    _, cdf = cdf_table(np.array(w))
    for bins in (1, per_item * len(cdf), per_item * len(cdf) + 3):
        expected = np.searchsorted(cdf, np.arange(bins) / bins, side="right")
        np.testing.assert_array_equal(guide_table(cdf, bins), expected)


@settings(max_examples=100, deadline=None)
@given(weights, st.integers(0, 2**32 - 1))
def test_sampler_picks_the_first_item_whose_cumulative_share_passes_the_uniform(w: list[float], seed: int) -> None:
    items = np.arange(len(w)) * 3 + 1
    sampler = WeightedSampler(items, np.array(w))
    u = np.random.default_rng(seed).random(500)
    positive = np.array(w) > 0
    cdf = np.cumsum(np.array(w)[positive])
    cdf /= cdf[-1]
    expected = items[positive][np.minimum(np.searchsorted(cdf, u, side="right"), positive.sum() - 1)]
    np.testing.assert_array_equal(sampler.pick(u), expected)


def test_guide_table_at_and_next_to_every_bin_edge():
    """Cumulative shares one rounding step either side of an edge b / bins, where ``ceil(share x bins)`` misjudges."""
    for bins in (7, 1000, 999_983):
        edges = np.unique(np.random.default_rng(bins).integers(1, bins, 400)) / bins
        cdf = np.sort(np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 2), [np.inf]]))
        np.testing.assert_array_equal(guide_table(cdf, bins), np.searchsorted(cdf, np.arange(bins) / bins, side="right"))
