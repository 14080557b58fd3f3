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
    """Log-ratio fields: 0 where nothing is near, log 2 at the city's average.

    ``density`` (smoothed same-track revenue), its city ``mean`` per track and
    the kernel's ``self_weight`` are kept so growth can take a firm's own
    contribution out of its agglomeration (:func:`others_agglomeration`).
    """

    agglomeration: np.ndarray  # (tracks, coarse cells) float32
    talent_access: np.ndarray  # (coarse cells,) float32
    density: np.ndarray  # (tracks, coarse cells) float64, CNY/yr smoothed
    mean: np.ndarray  # (tracks,) city mean of density
    self_weight: float  # the smoothing kernel's weight of a cell on itself


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
    density = geo.smooth(revenue, params.agglomeration_radius_m)
    agglomeration = log_ratio(density, geo.coarse_city)
    people = count_by(talent.home, geo.coarse_of, talent.alive, n)
    access = log_ratio(geo.smooth(people[None, :], params.talent_radius_m), geo.coarse_city)[0]
    mean = density[:, geo.coarse_city].mean(axis=1)
    return Fields(agglomeration.astype(np.float32), access.astype(np.float32), density, mean,
                  kernel_self_weight(geo, params.agglomeration_radius_m))


def kernel_self_weight(geo: Geography, radius_m: float) -> float:
    """The weight the smoothing kernel gives a coarse cell's own value (a unit impulse smoothed, read at itself).

    The kernel is the same in every cell (edges only lose mass beyond the
    grid), so one impulse in the middle measures it for all, once per grid
    and radius (kept in ``geo.memo``; it is the same every month).
    """
    key = ("kernel_self_weight", radius_m)
    if key not in geo.memo:
        geo.memo[key] = _impulse_response(geo, radius_m)
    return geo.memo[key]


def _impulse_response(geo: Geography, radius_m: float) -> float:
    """The smoothed value of a unit impulse at the grid's middle, read at the middle."""
    impulse = np.zeros((1, geo.coarse_size))
    rows, cols = geo.coarse_shape
    centre = (rows // 2) * cols + cols // 2
    impulse[0, centre] = 1.0
    return float(geo.smooth(impulse, radius_m)[0, centre])


def others_agglomeration(fields: Fields, track: np.ndarray, coarse: np.ndarray, revenue: np.ndarray) -> np.ndarray:
    """Each firm's agglomeration from the other firms around it: its own smoothed revenue taken out.

    Without this a large firm feeds its own field (海康威视 alone made most of
    its cell's same-track density and gained about 8 points a year from it).
    Same log-ratio form as :func:`log_ratio`, against the same city mean.
    """
    others = np.maximum(fields.density[track, coarse] - revenue * fields.self_weight, 0.0)
    mean = fields.mean[track]
    return np.log1p(np.divide(others, mean, out=np.zeros_like(others), where=mean > 0))


def log_ratio(values: np.ndarray, city: np.ndarray) -> np.ndarray:
    """log(1 + value / city mean) per row; rows with nothing anywhere are 0."""
    mean = values[:, city].mean(axis=1, keepdims=True)
    return np.log1p(np.divide(values, mean, out=np.zeros_like(values), where=mean > 0))
