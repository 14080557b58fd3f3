"""Neighbourhood fields: same-track agglomeration and talent access, smoothed on the coarse grid.

Growth and location choice both ask "how much of my track is near here?" and
"how much talent lives within reach?". Answering per agent would be a
neighbour search; instead agents are binned onto the coarse grid with one
``bincount`` and the bins are Gaussian-smoothed, so the cost is one pass over
the agents plus a small convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geography import Geography
from .kernels import count_by
from .params import TRACKS, Params
from .state import State


@dataclass
class Fields:
    """Log-ratio fields: 0 where nothing is near, log 2 at the city's average."""

    agglomeration: np.ndarray  # (tracks, coarse cells) float32
    talent_access: np.ndarray  # (coarse cells,) float32


def neighbourhood_fields(state: State, geo: Geography, params: Params) -> Fields:
    """Smooth live firms' revenue by track and live talent by home onto the coarse grid.

    Averages are taken over the coarse cells that overlap the city, so the
    fields do not depend on how much sea or hills the grid frames.
    """
    firms, talent = state.firms, state.talent
    alive = firms.alive
    n = geo.coarse_size
    key = firms.track[alive].astype(np.int64) * n + geo.coarse(firms.cell[alive])
    revenue = np.bincount(key, firms.revenue[alive], minlength=len(TRACKS) * n).reshape(len(TRACKS), n)
    agglomeration = log_ratio(geo.smooth(revenue, params.agglomeration_radius_m), geo.coarse_city)
    people = count_by(talent.home, geo.coarse_of, talent.alive, n)
    access = log_ratio(geo.smooth(people[None, :], params.talent_radius_m), geo.coarse_city)[0]
    return Fields(agglomeration.astype(np.float32), access.astype(np.float32))


def log_ratio(values: np.ndarray, city: np.ndarray) -> np.ndarray:
    """log(1 + value / city mean) per row; rows with nothing anywhere are 0."""
    mean = values[:, city].mean(axis=1, keepdims=True)
    return np.log1p(np.divide(values, mean, out=np.zeros_like(values), where=mean > 0))
