"""The static per-cell inputs of a run, flattened onto the analysis grid.

The engine works on flat cell indices, so this module turns the LayerStack's
vectors into flat arrays once per run: district and zone of each cell, the
floor-space capacity and rent the land process starts from, the housing
weight talent choose homes by, the pull of universities and platforms, the
access to the metro, and the coarse "neighbourhood" grid on which densities
are smoothed.

Within a district, floor space and housing follow the land layer
(``LayerStack.land_raster``: 0 on water, 1 on built-up land, little on
forested hills), so a district keeps its total from its GDP and population
while water holds nothing and built-up land carries most of it. A planner's
land layer (scenario ``layers: {land: FILE}``) flows through the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from layers import LayerStack

from .params import Params
from .smoothing import gaussian

PULL_KINDS = ("university", "lab", "platform")
"""Anchor kinds that attract new firms (spin-offs near campuses and parks)."""


@dataclass
class Geography:
    """Flat per-cell arrays for one grid, plus cell arithmetic."""

    shape: tuple[int, int]
    cell_m: float
    district: np.ndarray  # int16, -1 outside the city
    zone: np.ndarray  # int16, -1 outside the city
    capacity_m2: np.ndarray  # float64 floor space usable by the industry
    base_rent: np.ndarray  # float32 CNY/m2/month at zero occupancy
    housing: np.ndarray  # float32 relative residential weight
    pull: np.ndarray  # float32 0..1 proximity to universities, labs, platforms
    metro_access: np.ndarray  # float32 0..1 closeness to a metro line, exp(-distance / params.metro_radius_m)
    coarse_factor: int
    district_names: tuple[str, ...]
    gdp: np.ndarray  # CNY per district (district_stats.csv)
    population: np.ndarray  # people per district (district_stats.csv)
    zone_ids: tuple[str, ...]
    anchor_cells: dict[str, int]
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # derived constants computed once per run (fields.kernel_self_weight)

    @classmethod
    def from_layers(cls, stack: LayerStack, params: Params) -> "Geography":
        """Derive the per-cell inputs from the layers and the land parameters."""
        grid = stack.grid
        district = stack.district_raster.ravel().astype(np.int16)
        zone = stack.zone_raster.ravel().astype(np.int16)
        area = stack.districts["area_km2"].to_numpy()
        gdp = _per_district(stack, "gdp_2022_cny")
        relative = np.where(district >= 0, (gdp / area)[district] / (gdp / area).max(), 0.0)
        land = within_district(stack.land_raster.ravel(), district)
        capacity = params.industry_far * grid.cell_m**2 * relative * land
        platforms = stack.anchors[stack.anchors["kind"] == "platform"]
        if len(platforms):
            near = grid.distance_to(platforms).ravel() <= params.platform_radius_m
            capacity = np.where(near & (district >= 0), capacity * params.platform_capacity_factor, capacity)
        pull_points = stack.anchors[stack.anchors["kind"].isin(PULL_KINDS)]
        pull = np.exp(-grid.distance_to(pull_points).ravel() / params.university_radius_m) if len(pull_points) else np.zeros(grid.size)
        population = _per_district(stack, "population_2020")
        people = population / area
        housing = np.where(district >= 0, people[district] / people.max(), 0.0) * land
        metro = np.exp(-stack.metro_distance_m.ravel() / params.metro_radius_m)
        cells = grid.cells_of_points(stack.anchors)
        return cls(
            shape=grid.shape,
            cell_m=grid.cell_m,
            district=district,
            zone=zone,
            capacity_m2=capacity,
            base_rent=(params.rent_base_cny_m2_month * np.sqrt(relative)).astype(np.float32),
            housing=housing.astype(np.float32),
            pull=np.where(district >= 0, pull, 0.0).astype(np.float32),
            metro_access=np.where(district >= 0, metro, 0.0).astype(np.float32),
            coarse_factor=params.coarse_factor(grid.cell_m),
            district_names=tuple(stack.districts["name_zh"]),
            gdp=gdp,
            population=population,
            zone_ids=tuple(stack.zones["zone"]),
            anchor_cells={a: int(c) for a, c in zip(stack.anchors.get("id", stack.anchors["name_en"]), cells)},
        )

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.shape[0] * self.shape[1]

    @property
    def coarse_shape(self) -> tuple[int, int]:
        """Shape of the neighbourhood grid."""
        k = self.coarse_factor
        return -(-self.shape[0] // k), -(-self.shape[1] // k)

    @property
    def coarse_size(self) -> int:
        """Number of neighbourhood cells."""
        return self.coarse_shape[0] * self.coarse_shape[1]

    def coarse(self, cells: np.ndarray) -> np.ndarray:
        """Neighbourhood-grid index of each fine cell index (a table look-up: cheaper than division)."""
        return self.coarse_of[cells]

    @cached_property
    def coarse_of(self) -> np.ndarray:
        """Neighbourhood-grid index of every fine cell."""
        row, col = np.divmod(np.arange(self.size, dtype=np.int32), self.shape[1])
        return ((row // self.coarse_factor) * self.coarse_shape[1] + col // self.coarse_factor).astype(np.int32)

    @cached_property
    def coarse_city(self) -> np.ndarray:
        """Neighbourhood cells that overlap the city."""
        return np.bincount(self.coarse_of[self.district >= 0], minlength=self.coarse_size) > 0

    @cached_property
    def log_base_rent(self) -> np.ndarray:
        """log of the base rent (0 outside the city, where no one may live)."""
        return np.log(np.where(self.base_rent > 0, self.base_rent, 1.0)).astype(np.float32)

    def distance_km(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Straight-line km between cell centres (broadcasting), in float32."""
        x, y = self.centre_km
        return np.hypot(x[a] - x[b], y[a] - y[b])

    @cached_property
    def centre_km(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre column and row positions in km from the grid origin (look-up tables for distances)."""
        row, col = np.divmod(np.arange(self.size), self.shape[1])
        km = self.cell_m / 1000.0
        return ((col + 0.5) * km).astype(np.float32), ((row + 0.5) * km).astype(np.float32)

    def smooth(self, fields: np.ndarray, radius_m: float) -> np.ndarray:
        """Gaussian-smooth (k, coarse_size) neighbourhood fields with sd ``radius_m``."""
        sigma = radius_m / (self.coarse_factor * self.cell_m)
        grids = fields.reshape(len(fields), *self.coarse_shape)
        return gaussian(grids, sigma).reshape(len(fields), -1)


def _per_district(stack: LayerStack, column: str) -> np.ndarray:
    """A district statistic in the districts layer's row order."""
    values = stack.district_stats.set_index("name_zh")[column].astype(float)
    return values.reindex(stack.districts["name_zh"]).to_numpy()


def within_district(weight: np.ndarray, district: np.ndarray) -> np.ndarray:
    """Each cell's land weight over its district's mean: spreads a district's total by land, keeping the total.

    A district whose land weighs nothing (a planner's layer can say so) gets
    0 everywhere; placement then skips it.
    """
    inside = district >= 0
    index = np.where(inside, district, 0)
    total = np.bincount(index[inside], weight[inside].astype(np.float64), minlength=int(district.max()) + 1)
    count = np.bincount(index[inside], minlength=len(total))
    mean = np.divide(total, count, out=np.zeros(len(total)), where=count > 0)
    return np.where(inside & (mean[index] > 0), weight / np.where(mean[index] > 0, mean[index], 1.0), 0.0)
