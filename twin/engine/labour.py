"""How much labour a firm wants and what it pays: shared by synthesis and every process."""

from __future__ import annotations

import numpy as np
from numba import prange

from .compiled import threaded
from .params import Params

LN_1E7 = np.log(1e7)


def revenue_per_worker(revenue: np.ndarray, params: Params) -> np.ndarray:
    """Revenue per worker rises with firm size (params.productivity_elasticity)."""
    return _per_worker(np.asarray(revenue, np.float64), params.revenue_per_worker_cny, params.productivity_elasticity)


@threaded(lambda revenue, *_: revenue.size)
def _per_worker(revenue, base, elasticity):  # noqa: ANN001, ANN201 (numba arrays)
    """base x (max(revenue, 1) / 1e7)^elasticity, on every core; the power as a logarithm and an exponential (a third faster)."""
    flat = revenue.ravel()
    out = np.empty(flat.shape[0])
    for i in prange(flat.shape[0]):
        out[i] = base * np.exp(elasticity * (np.log(max(flat[i], 1.0)) - LN_1E7))
    return out.reshape(revenue.shape)


def labour_demand(revenue: np.ndarray, params: Params, per_worker: np.ndarray | None = None) -> np.ndarray:
    """Workers a firm of this revenue wants (at least one); ``per_worker`` is its revenue_per_worker if already computed this month."""
    return np.maximum(1.0, revenue / (revenue_per_worker(revenue, params) if per_worker is None else per_worker))


def wage_offer(revenue: np.ndarray, params: Params, per_worker: np.ndarray | None = None) -> np.ndarray:
    """Annual wage a firm offers: the labour share of its revenue per worker (``per_worker`` as in labour_demand)."""
    return (params.wage_share * (revenue_per_worker(revenue, params) if per_worker is None else per_worker)).astype(np.float32)
