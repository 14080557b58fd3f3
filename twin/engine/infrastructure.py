"""Infrastructure: compute centres coming online, firms' compute demand and the compute price."""

from __future__ import annotations

import numpy as np

from .compiled import kernel
from .params import INTENSITY, Params
from .state import State


def compute_supply(state: State) -> float:
    """PFLOPS of the compute centres online at the state's moment."""
    compute = state.compute
    online = compute.alive & (compute.online <= state.year + 1e-6)
    return float(compute.pflops[online].sum())


@kernel
def _demand(revenue, track, alive, intensity, per_100m, out):  # noqa: ANN001, ANN201 (numba arrays)
    """Each firm's PFLOPS (float32, into ``out``) and the live firms' total: one pass instead of five numpy ones."""
    total = 0.0
    for i in range(revenue.shape[0]):
        out[i] = np.float32(revenue[i] / 1e8 * per_100m * intensity[track[i]])
        if alive[i]:
            total += out[i]
    return total


def update_compute(state: State, params: Params, calibrate: bool = False) -> None:
    """Set firms' compute demand and the price index, (demand/supply over the base year's)^elasticity.

    With ``calibrate`` the current ratio becomes the base, so the base year's
    price index is 1 and only later build-out and growth move it.
    """
    firms = state.firms
    demand = _demand(firms.revenue, firms.track, firms.alive, INTENSITY, params.compute_pflops_per_100m_cny, firms.compute)
    ratio = max(demand, 1e-9) / max(compute_supply(state), 1e-9)
    if calibrate:
        state.base_compute_ratio = ratio
    price = (ratio / state.base_compute_ratio) ** params.compute_price_elasticity
    state.compute_price = float(np.clip(price, 1.0 / params.compute_price_cap, params.compute_price_cap))
