"""Land: floor space in use, and rents that respond to occupancy."""

from __future__ import annotations

import numpy as np
from numba import prange

from .compiled import threaded
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
    """Reset rents to the month's occupancy: rent = base x (1 + elasticity x occupancy / capacity).

    Occupancy itself is kept current by every process that changes it
    (hires, separations, births, relocations, exits), in whole desks, so it
    equals a recount (:func:`occupancy`; tests/test_engine.py checks every
    month) without a monthly pass over the firms and a fresh grid-sized array.
    """
    state.rent = _rents(geo.base_rent, state.occupancy_m2, state.capacity_m2, params.rent_occupancy_elasticity)


@threaded(lambda base, *_: len(base))
def _rents(base, occupancy, capacity, elasticity):  # noqa: ANN001, ANN201 (numba arrays)
    """float32 rent of every cell, in one pass over the grid (no rent rise where there is no floor space)."""
    out = np.empty(base.shape[0], np.float32)
    for i in prange(base.shape[0]):
        use = occupancy[i] / capacity[i] if capacity[i] > 0 else 0.0
        out[i] = base[i] * (1.0 + elasticity * use)
    return out


def free_m2(state: State, cells: np.ndarray) -> np.ndarray:
    """Floor space still free in the given cells (any shape): asked where needed, not over the whole grid."""
    cells = np.asarray(cells)
    return _free(cells.ravel(), state.capacity_m2, state.occupancy_m2).reshape(cells.shape)


@threaded(lambda cells, *_: len(cells))
def _free(cells, capacity, occupancy):  # noqa: ANN001, ANN201 (numba arrays)
    """max(capacity - occupancy, 0) at each cell: both look-ups in one pass, instead of two numpy gathers and their temporaries."""
    out = np.empty(cells.shape[0])
    for i in prange(cells.shape[0]):
        out[i] = max(capacity[cells[i]] - occupancy[cells[i]], 0.0)
    return out
