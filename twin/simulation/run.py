"""One run of a scenario, kept as yearly snapshots for the outputs, the maps and the comparisons.

``simulate`` steps a :class:`VisionValleyModel` to the scenario's last year
and, at the base year and each year's end, keeps what the outputs need:
per-cell revenue and talent density, the largest firms, compute centres and
parks, the headline figures, and the firms' table for the chosen years.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import WGS84, LayerStack

from ..engine.metrics import COLUMNS
from ..engine.params import TIERS, TRACK_IDS, TRACKS, Params
from ..policy.scenario import Scenario
from .model import VisionValleyModel

TOP_FIRMS = 300
"""Firms shown as points on the map each year (the rest are in the density layers)."""


@dataclass
class YearSnapshot:
    """The state of one year, reduced to what outputs and maps show."""

    year: int
    revenue: np.ndarray  # (rows, cols) float32: firm revenue per cell, CNY/yr
    talent: np.ndarray  # (rows, cols) float32: talent living in each cell
    figures: dict[str, float]
    top_firms: pd.DataFrame  # name_zh, name_en, track, revenue_cny, employees, lon, lat
    compute: pd.DataFrame  # name, pflops, lon, lat
    parks: pd.DataFrame  # floor_m2, zone, lon, lat
    firms: gpd.GeoDataFrame | None = None  # every firm, for the years asked for


@dataclass
class RunResult:
    """A finished run: its scenario, seed, geography, yearly snapshots and tidy metrics."""

    scenario: Scenario
    seed: int
    layers: LayerStack
    years: list[YearSnapshot]
    metrics: pd.DataFrame
    params: Params  # the resolved parameter vector the run used (calibration and overrides applied)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def grid(self):
        """The analysis grid of the run."""
        return self.layers.grid

    def year(self, year: int) -> YearSnapshot:
        """The snapshot of one year."""
        for snap in self.years:
            if snap.year == year:
                return snap
        raise KeyError(f"year {year} not in this run ({self.years[0].year}-{self.years[-1].year})")


def simulate(
    spec: Scenario,
    seed: int | None = None,
    *,
    stack: LayerStack | None = None,
    firm_years: Iterable[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run a scenario to its end and keep yearly snapshots.

    ``firm_years`` are the years whose full firms table is kept (default: the
    last year); ``progress(done, total)`` is called after every month.
    """
    started = time.perf_counter()
    seed = spec.seed if seed is None else seed
    model = VisionValleyModel(spec, seed=seed, stack=stack)
    setup = time.perf_counter() - started
    keep = set(firm_years) if firm_years is not None else {spec.years.end}
    years = [_snapshot(model, keep)]
    total = (spec.years.end - spec.years.start) * 12
    while model.running:
        model.step()
        if progress:
            progress(model.steps, total)
        if model.steps % 12 == 0:
            years.append(_snapshot(model, keep))
    metrics = model.datacollector.get_table_dataframe("metrics")[list(COLUMNS)]
    metrics.insert(0, "seed", seed)
    metrics.insert(0, "scenario", spec.name)
    timings = {"setup_s": round(setup, 3), "run_s": round(time.perf_counter() - started - setup, 3)}
    return RunResult(spec, seed, model.layers, years, metrics, model.params, timings)


def _snapshot(model: VisionValleyModel, firm_years: set[int]) -> YearSnapshot:
    """Reduce the model's current state to a YearSnapshot."""
    state, geo = model.state, model.geo
    firms = state.firms
    alive = np.flatnonzero(firms.alive)
    shape = geo.shape
    revenue = np.bincount(firms.cell[alive], firms.revenue[alive], minlength=geo.size).astype(np.float32).reshape(shape)
    people = model.state.residents.astype(np.float32).reshape(shape)
    year = model.calendar_year
    lon, lat = _lonlat(model, firms.cell[alive])
    table = pd.DataFrame(
        {
            "firm_id": firms.uid[alive],
            "name_zh": _names(model, firms.anchor[alive], "name_zh"),
            "name_en": _names(model, firms.anchor[alive], "name_en"),
            "track": np.array(TRACK_IDS)[firms.track[alive]],
            "track_zh": np.array([t[1] for t in TRACKS])[firms.track[alive]],
            "tier": np.array(TIERS)[model.params.tier(firms.revenue[alive])],
            "revenue_cny": firms.revenue[alive],
            "revenue_source": _revenue_source(model, firms.anchor[alive]),
            "employees": firms.employees[alive],
            "founded": np.floor(firms.born[alive]).astype(int),
            "funding_cny": firms.funding[alive].astype(float),
            "compute_pflops": firms.compute[alive].astype(float),
            "zone": np.array(geo.zone_ids)[geo.zone[firms.cell[alive]]],
            "district": np.array(geo.district_names)[geo.district[firms.cell[alive]]],
            "lon": lon,
            "lat": lat,
        }
    )
    top = table.nlargest(TOP_FIRMS, "revenue_cny")[["name_zh", "name_en", "track", "track_zh", "revenue_cny", "employees", "lon", "lat"]]
    full = None
    if year in firm_years:
        full = gpd.GeoDataFrame(table.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(lon, lat), crs=WGS84)
        full.insert(0, "year", year)
    return YearSnapshot(year, revenue, people, model.figures, top.reset_index(drop=True), _compute(model), _parks(model), full)


def _names(model: VisionValleyModel, anchor: np.ndarray, column: str) -> np.ndarray:
    """Anchor firms' names; synthesized firms have none (an empty string)."""
    layer = model.layers.anchors.set_index("id")[column]
    names = np.array([layer.get(a, a) for a in model.state.anchor_ids] or [""], dtype=object)
    return np.where(anchor >= 0, names[np.maximum(anchor, 0)], "")


def _revenue_source(model: VisionValleyModel, anchor: np.ndarray) -> np.ndarray:
    """Where a firm's base-year revenue comes from: ``sourced`` or ``assumed`` (anchor_firms.csv), else ``synthetic``."""
    status = model.layers.anchor_firms.set_index("id")["revenue_status"]
    known = np.array([status[a] for a in model.state.anchor_ids] or ["synthetic"], dtype=object)
    return np.where(anchor >= 0, known[np.maximum(anchor, 0)], "synthetic")


def _lonlat(model: VisionValleyModel, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 longitude and latitude of cell centres."""
    from rasterio.warp import transform

    x, y = model.layers.grid.centre_of(cells)
    lon, lat = transform(model.layers.grid.crs, WGS84, np.asarray(x), np.asarray(y))
    return np.round(lon, 6), np.round(lat, 6)


def _compute(model: VisionValleyModel) -> pd.DataFrame:
    """Compute centres online now."""
    compute = model.state.compute
    online = np.flatnonzero(compute.alive & (compute.online <= model.state.year + 1e-6))
    lon, lat = _lonlat(model, compute.cell[online])
    return pd.DataFrame({"pflops": compute.pflops[online].astype(float), "online": compute.online[online].astype(float), "lon": lon, "lat": lat})


def _parks(model: VisionValleyModel) -> pd.DataFrame:
    """Parks online now."""
    parks = model.state.parks
    online = np.flatnonzero(parks.alive & (parks.online <= model.state.year + 1e-6))
    lon, lat = _lonlat(model, parks.cell[online])
    zone = np.array(model.geo.zone_ids + ("",))[parks.zone[online]]
    return pd.DataFrame({"floor_m2": parks.floor_m2[online], "zone": zone, "lon": lon, "lat": lat})
