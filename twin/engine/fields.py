"""Neighbourhood fields: employment density, same-track agglomeration and talent access, smoothed on the coarse grid.

Growth asks "how many people work near here, in all tracks and in mine?" (the
density of the productivity level effect), location choice "how much of my
track is near here?", and both "how much talent lives within reach?".
Answering per agent would be a
neighbour search; instead firms are binned onto the coarse grid in one pass,
talent come already counted per cell (``state.residents``), and the bins are
Gaussian-smoothed, so the cost is one pass over the firms plus a small
convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from .compiled import kernel, threaded
from .geography import Geography
from .params import TRACKS, Params
from .state import State


@dataclass
class Fields:
    """The smoothed fields of one month.

    ``employment`` is the smoothed employment by track and
    ``employment_all`` its sum over the tracks, in workers per coarse cell;
    ``per_km2`` turns them into full-city workers per km² (the density of
    :func:`density_level`). ``density`` is the smoothed same-track revenue and ``mean`` its city
    mean per track; agglomeration is their log ratio, 0 where nothing is
    near and log 2 at the city's average. It is taken only where it is asked
    for (:meth:`agglomeration` at candidate cells, :func:`others_agglomeration`
    at firms), not over the whole grid each month. The kernel's
    ``self_weight`` lets growth take a firm's own contribution out.
    """

    density: np.ndarray  # (tracks, coarse cells) float64, CNY/yr smoothed
    mean: np.ndarray  # (tracks,) city mean of density
    talent_access: np.ndarray  # (coarse cells,) float32 log ratio, as agglomeration
    self_weight: float  # the smoothing kernel's weight of a cell on itself
    employment: np.ndarray  # (tracks, coarse cells) float64, workers smoothed
    employment_all: np.ndarray  # (coarse cells,) float64, the sum over tracks
    per_km2: float  # full-city workers per km² of one smoothed worker per coarse cell: 1 / (scale x cell area)

    def agglomeration(self, track: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """Same-track agglomeration (float32 log ratio) at (track, coarse cell) pairs; the arguments broadcast.

        It is :func:`others_agglomeration` of a newcomer with no revenue yet:
        every firm already there counts.
        """
        track, coarse = np.broadcast_arrays(track, coarse)
        return others_agglomeration(self, track.ravel(), coarse.ravel(), np.zeros(track.size)).reshape(track.shape).astype(np.float32)


def neighbourhood_fields(state: State, geo: Geography, params: Params) -> Fields:
    """Smooth live firms' revenue and employment by track, and live talent by home, onto the coarse grid.

    Averages are taken over the coarse cells that overlap the city, so the
    fields do not depend on how much sea or hills the grid frames. Revenue
    and employment share one smoothing (one call, the same distance decay).
    """
    firms = state.firms
    n, tracks = geo.coarse_size, len(TRACKS)
    revenue = _track_bins(firms.track, firms.cell, firms.revenue, firms.alive, geo.coarse_of, tracks, n)
    workers = _track_bins(firms.track, firms.cell, staff(firms.employees, firms.anchor, params.scale), firms.alive, geo.coarse_of, tracks, n)
    smoothed = geo.smooth(np.concatenate([revenue, workers]), params.agglomeration_radius_m)
    density, employment = smoothed[:tracks], smoothed[tracks:]
    people = _coarse_sums(state.residents, geo.coarse_of, n)
    access = log_ratio(geo.smooth(people[None, :], params.talent_radius_m), geo.coarse_city)[0]
    cell_km2 = (geo.coarse_factor * geo.cell_m / 1000.0) ** 2
    return Fields(density, city_mean(density, geo.coarse_city), access.astype(np.float32),
                  kernel_self_weight(geo, params.agglomeration_radius_m), employment, employment.sum(axis=0),
                  1.0 / (params.scale * cell_km2))


@kernel
def _track_bins(track, cell, revenue, alive, coarse_of, tracks, size):  # noqa: ANN001, ANN201 (numba arrays)
    """Live firms' revenue summed by (track, coarse cell): bincount's sums, in the same order, without its key array."""
    out = np.zeros((tracks, size))
    for i in range(track.shape[0]):
        if alive[i]:
            out[track[i], coarse_of[cell[i]]] += revenue[i]
    return out


@kernel
def _coarse_sums(values, coarse_of, size):  # noqa: ANN001, ANN201 (numba arrays)
    """Per-cell values summed onto the coarse grid (state.residents: one pass over the cells, not over the talent)."""
    out = np.zeros(size)
    for i in range(values.shape[0]):
        out[coarse_of[i]] += values[i]
    return out


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
    Same log-ratio form as :meth:`Fields.agglomeration`, against the same
    city mean, in one compiled pass over the firms.
    """
    return _others_log_ratio(np.asarray(track), np.asarray(coarse), np.asarray(revenue, dtype=np.float64),
                            fields.density, fields.mean, fields.self_weight)


@threaded(lambda track, *_: len(track))
def _others_log_ratio(track, coarse, revenue, density, mean, self_weight):  # noqa: ANN001, ANN201 (numba arrays)
    """:func:`others_log_ratio` per firm."""
    out = np.empty(track.shape[0])
    for i in prange(track.shape[0]):
        out[i] = others_log_ratio(density, mean, self_weight, track[i], coarse[i], revenue[i])
    return out


@kernel(inline="always")
def others_log_ratio(density, mean, self_weight, track, coarse, revenue):  # noqa: ANN001, ANN201 (numba arrays)
    """log(1 + max(density - revenue x self weight, 0) / mean) of one firm; 0 for a track with nothing anywhere."""
    return np.log1p(max(density[track, coarse] - revenue * self_weight, 0.0) / mean[track]) if mean[track] > 0 else 0.0


def staff(employees: np.ndarray, anchor: np.ndarray, scale: float) -> np.ndarray:
    """Each firm row's workers as a city scaled by ``scale`` counts them: an anchor's times ``scale``.

    Anchors keep their full workforce at any scale, so counted whole they
    would stand for 1 / scale times their real number in the density of
    full-city workers per km²; this keeps the density the same at every scale.
    """
    return employees * np.where(anchor >= 0, scale, 1.0)


def talent_pool(state: State, params: Params) -> float:
    """The talent pool as a city scaled by ``params.scale`` counts it: the anchors' workers times ``scale``.

    Births and in-migration are proportional to the pool. The anchors bring their full workforce at any scale
    (one talent agent a job), so counted whole they would make a city at scale 0.01 found about three times its
    share of firms a year; as :func:`staff` does for densities, they count at the city's scale. At scale 1 the
    pool is the head count, bit for bit.
    """
    if params.scale >= 1:
        return float(state.talent.count)
    firms = state.firms
    anchored = int(firms.employees[firms.alive & (firms.anchor >= 0)].sum())
    return (state.talent.count - anchored) + params.scale * anchored


@kernel(inline="always")
def density_level(employment, employment_all, per_km2, self_weight, terms, track, coarse, employees):  # noqa: ANN001, ANN201 (numba arrays)
    """A firm's log productivity level from the employment density of the other firms around it (its own smoothed
    workers, as :func:`staff` counts them, taken out, so a firm does not raise its own productivity), docs/parameters.md:

        urbanisation x log(all tracks' density + floor) + localisation x log(its track's density + floor),

    densities in full-city workers per km². ``terms`` is (urbanisation, localisation, floor). Revenue moves with the
    change of this level, once (firms.grow_firms), so the same density gives the same level whatever came before.
    """
    urbanisation, localisation, floor = terms
    own = employees * self_weight
    return (urbanisation * np.log(max(employment_all[coarse] - own, 0.0) * per_km2 + floor)
            + localisation * np.log(max(employment[track, coarse] - own, 0.0) * per_km2 + floor))


def log_ratio(values: np.ndarray, city: np.ndarray) -> np.ndarray:
    """log(1 + value / city mean) per row; rows with nothing anywhere are 0."""
    mean = city_mean(values, city)[:, None]
    return np.log1p(np.divide(values, mean, out=np.zeros_like(values), where=mean > 0))


@kernel
def city_mean(values: np.ndarray, city: np.ndarray) -> np.ndarray:
    """Each row's mean over the coarse cells that overlap the city: in order, without the masked copy numpy would make."""
    out = np.zeros(values.shape[0])
    cells = 0
    for c in range(values.shape[1]):
        if city[c]:
            cells += 1
            for r in range(values.shape[0]):
                out[r] += values[r, c]
    return out / cells
