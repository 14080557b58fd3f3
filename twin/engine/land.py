"""Land: floor space in use, and rents that respond to occupancy."""

from __future__ import annotations

import numpy as np

from .geography import Geography
from .params import Params
from .state import State


def occupancy(state: State, params: Params, size: int) -> np.ndarray:
    """Floor space each cell's live firms use (m²)."""
    firms = state.firms
    alive = firms.alive
    return np.bincount(firms.cell[alive], floor_need(firms.employees[alive], params), minlength=size)


def floor_need(employees: np.ndarray, params: Params) -> np.ndarray:
    """Floor space of a firm: a desk per worker plus one for its founders, so a new firm needs room too."""
    return (employees.astype(np.float64) + 1.0) * params.floor_m2_per_worker


def update_land(state: State, geo: Geography, params: Params) -> None:
    """Recount occupancy and reset rents: rent = base x (1 + elasticity x occupancy / capacity)."""
    state.occupancy_m2 = occupancy(state, params, geo.size)
    use = np.divide(state.occupancy_m2, state.capacity_m2, out=np.zeros(geo.size), where=state.capacity_m2 > 0)
    state.rent = (geo.base_rent * (1.0 + params.rent_occupancy_elasticity * use)).astype(np.float32)


def free_m2(state: State) -> np.ndarray:
    """Floor space still free in each cell."""
    return np.maximum(state.capacity_m2 - state.occupancy_m2, 0.0)
