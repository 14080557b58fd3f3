"""How much labour a firm wants and what it pays: shared by synthesis and every process."""

from __future__ import annotations

import numpy as np

from .params import Params


def revenue_per_worker(revenue: np.ndarray, params: Params) -> np.ndarray:
    """Revenue per worker rises with firm size (params.productivity_elasticity)."""
    scaled = np.maximum(revenue, 1.0) / 1e7
    return params.revenue_per_worker_cny * scaled**params.productivity_elasticity


def labour_demand(revenue: np.ndarray, params: Params, per_worker: np.ndarray | None = None) -> np.ndarray:
    """Workers a firm of this revenue wants (at least one); ``per_worker`` is its revenue_per_worker if already computed this month."""
    return np.maximum(1.0, revenue / (revenue_per_worker(revenue, params) if per_worker is None else per_worker))


def wage_offer(revenue: np.ndarray, params: Params, per_worker: np.ndarray | None = None) -> np.ndarray:
    """Annual wage a firm offers: the labour share of its revenue per worker (``per_worker`` as in labour_demand)."""
    return (params.wage_share * (revenue_per_worker(revenue, params) if per_worker is None else per_worker)).astype(np.float32)
