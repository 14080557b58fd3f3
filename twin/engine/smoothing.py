"""Gaussian smoothing of the neighbourhood fields, on every core, with SciPy's own arithmetic.

``scipy.ndimage.gaussian_filter`` runs on one core and was a tenth of a
month's step. These kernels filter the same way, in the same order, so the
bits are SciPy's (a test compares them): the 1-D weights are SciPy's
normalized Gaussian, truncated at 3 sd; the grid is padded with zeros (mode
"constant"); each axis is filtered in turn, rows first; and each output is
the centre value times the centre weight plus (left + right) times each
weight from the outermost inwards, as SciPy's symmetric correlation sums it.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from .compiled import kernel

TRUNCATE = 3.0


def gaussian(grids: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth each (rows, cols) grid of a (k, rows, cols) float64 stack with sd ``sigma`` cells."""
    weights = _weights(sigma, int(TRUNCATE * sigma + 0.5))
    return _along_cols(_along_rows(np.ascontiguousarray(grids, dtype=np.float64), weights), weights)


def _weights(sigma: float, radius: int) -> np.ndarray:
    """SciPy's Gaussian weights (scipy.ndimage._filters._gaussian_kernel1d, order 0), reversed as correlate1d takes them."""
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return (phi / phi.sum())[::-1].copy()


@kernel(parallel=True)
def _along_rows(src, w):  # noqa: ANN001, ANN201 (numba arrays)
    """Filter along axis 1: each output row is a weighted sum of whole input rows, so the inner loops run along memory."""
    k, rows, cols = src.shape
    r = (w.shape[0] - 1) // 2
    out = np.empty_like(src)
    for t in prange(k * rows):
        f, i = t // rows, t % rows
        dst = out[f, i]
        centre = src[f, i]
        for c in range(cols):
            dst[c] = centre[c] * w[r]
        for d in range(r, 0, -1):
            wd = w[r - d]
            above, below = i - d, i + d
            if above >= 0 and below < rows:
                _add_pair(dst, src[f, above], src[f, below], wd)
            elif above >= 0:
                _add_left(dst, src[f, above], wd)
            elif below < rows:
                _add_right(dst, src[f, below], wd)
    return out


@kernel(parallel=True)
def _along_cols(src, w):  # noqa: ANN001, ANN201 (numba arrays)
    """Filter along axis 2, one row at a time, each weight over the whole row (no dependency chain per cell)."""
    k, rows, cols = src.shape
    r = (w.shape[0] - 1) // 2
    out = np.empty_like(src)
    for t in prange(k * rows):
        f, m = t // rows, t % rows
        dst, line = out[f, m], src[f, m]
        for i in range(cols):
            dst[i] = line[i] * w[r]
        for d in range(r, 0, -1):
            wd = w[r - d]
            for i in range(min(d, cols)):
                dst[i] += (0.0 + (line[i + d] if i + d < cols else 0.0)) * wd
            for i in range(d, cols - d):
                dst[i] += (line[i - d] + line[i + d]) * wd
            for i in range(max(cols - d, d), cols):
                dst[i] += (line[i - d] + 0.0) * wd
    return out


@kernel(inline="always")
def _add_pair(dst, left, right, w):  # noqa: ANN001 (numba arrays)
    """dst += (left + right) * w, element by element."""
    for c in range(dst.shape[0]):
        dst[c] += (left[c] + right[c]) * w


@kernel(inline="always")
def _add_left(dst, left, w):  # noqa: ANN001 (numba arrays)
    """dst += (left + 0) * w: the right neighbour lies in the zero padding."""
    for c in range(dst.shape[0]):
        dst[c] += (left[c] + 0.0) * w


@kernel(inline="always")
def _add_right(dst, right, w):  # noqa: ANN001 (numba arrays)
    """dst += (0 + right) * w: the left neighbour lies in the zero padding."""
    for c in range(dst.shape[0]):
        dst[c] += (0.0 + right[c]) * w
