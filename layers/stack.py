"""Assembling the shipped (or user) layers into one validated LayerStack."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import InputError, escape, require_file
from .grid import METRIC_CRS, Grid
from .land import LandSource, check_overlap
from .vector import LINE, POINT, POLYGON, WGS84, read_layer

GIS_DATA = Path(__file__).resolve().parent.parent / "gis_data"
"""The shipped data folder; see gis_data/README.md for every file's provenance."""

PathLike = str | os.PathLike[str]


@dataclass
class LayerStack:
    """The validated geography of one run: vectors in WGS-84 plus the analysis grid.

    ``water``, ``urban`` (built-up land) and ``metro`` are vectors like the
    others; ``land`` is the developable-land layer, read onto the grid on
    first use of :attr:`land_raster`.
    """

    districts: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    anchors: gpd.GeoDataFrame
    district_stats: pd.DataFrame
    grid: Grid
    water: gpd.GeoDataFrame
    urban: gpd.GeoDataFrame
    metro: gpd.GeoDataFrame
    land: LandSource
    anchor_firms: pd.DataFrame  # anchor_firms.csv: id, track, revenue_cny, revenue_status, parent, founded (strings)
    anchor_revenue_series: pd.DataFrame  # anchor_revenue_series.csv: id, year, revenue_cny (strings)
    compute_centres: pd.DataFrame  # compute_centres.csv: anchor_id, pflops, online_year (strings)
    files: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Doubts about the inputs that do not stop a run (e.g. a layer that looks GCJ-02); shown in the summary and manifest."""

    @cached_property
    def district_raster(self) -> np.ndarray:
        """Row index into ``districts`` for every cell; -1 outside the city."""
        return self.grid.rasterize(self.districts, np.arange(len(self.districts)), fill=-1, dtype="int16")

    @cached_property
    def zone_raster(self) -> np.ndarray:
        """Row index into ``zones`` for every cell, highest-priority zone winning; -1 outside."""
        order = np.arange(len(self.zones))[::-1]
        zone = self.grid.rasterize(self.zones.iloc[order], order, fill=-1, dtype="int16")
        return np.where(self.district_raster >= 0, zone, -1).astype(np.int16)

    @property
    def city_mask(self) -> np.ndarray:
        """True for cells whose centre lies in one of the districts."""
        return self.district_raster >= 0

    @cached_property
    def water_raster(self) -> np.ndarray:
        """True where a cell's centre is in water or more than half of the cell is water."""
        return self.grid.rasterize(self.water, dtype="uint8").astype(bool) | (self.grid.fraction(self.water) > 0.5)

    @cached_property
    def built_raster(self) -> np.ndarray:
        """True where a city cell's centre is on built-up land that is not water."""
        built = self.grid.rasterize(self.urban, dtype="uint8").astype(bool)
        return built & self.city_mask & ~self.water_raster

    @cached_property
    def land_raster(self) -> np.ndarray:
        """Developable weight 0..1 per cell (float32), area-averaged from the land layer; 0 outside the city, on water and where it has no data."""
        weight = np.nan_to_num(self.land.on_grid(self.grid, self.city_mask), nan=0.0)
        return np.where(self.city_mask & ~self.water_raster, weight, 0.0).astype(np.float32)

    @cached_property
    def metro_distance_m(self) -> np.ndarray:
        """Metres (float32) from each cell centre to the nearest cell a metro line crosses."""
        return self.grid.distance_to(self.metro)

    @cached_property
    def built_distance_m(self) -> np.ndarray:
        """Metres (float32) from each cell centre to the nearest built-up cell (0 on built-up land)."""
        return self.grid.distance_to_cells(self.built_raster)

    def summary(self) -> str:
        """A short human-readable account of what was loaded."""
        metric = self.districts.to_crs(self.grid.crs)
        lines = [
            f"districts: {len(self.districts)}, {metric.area.sum() / 1e6:,.0f} km² in {self.grid.crs.to_string()}",
            "zones: " + "; ".join(
                f"{r.zone} {r.name_zh} ({r.area_km2:,.1f} km²{', approximate' if r.approximate else ''})"
                for r in self.zones.itertuples()
            ),
            f"anchors: {len(self.anchors)} ({', '.join(f'{k} {n}' for k, n in self.anchors['kind'].value_counts().items())})",
            f"grid: {self.grid.shape[0]} x {self.grid.shape[1]} cells of {self.grid.cell_m:g} m, {int(self.city_mask.sum()):,} in the city",
            f"land: {self.land.path.name}; water: {len(self.water)} bodies; built-up: {len(self.urban)} areas; metro: {len(self.metro)} lines",
        ]
        return "\n".join(lines)


def load(
    data_dir: PathLike = GIS_DATA,
    *,
    districts: PathLike | None = None,
    anchors: PathLike | None = None,
    zones: PathLike | None = None,
    zone_files: Mapping[str, PathLike] | None = None,
    district_stats: PathLike | None = None,
    land: PathLike | None = None,
    water: PathLike | None = None,
    urban: PathLike | None = None,
    metro: PathLike | None = None,
    anchor_firms: PathLike | None = None,
    anchor_revenue_series: PathLike | None = None,
    compute_centres: PathLike | None = None,
    cell_m: float = 250.0,
    repair: bool = False,
) -> LayerStack:
    """Load, validate and reproject the layers; any argument replaces the shipped file.

    ``zones`` is the zone table (which districts make each zone, see
    gis_data/zones.csv); ``zone_files`` maps a zone id to a boundary file that
    replaces that zone's geometry, for example an official 一园 boundary.

    ``land`` replaces gis_data/land.tif, the developable-land weight: either a
    raster (.tif/.tiff, band 1, values in [0, 1], nodata where unknown) or a
    vector file (.gpkg, .geojson, .shp) of polygons with a numeric column
    ``weight`` in [0, 1] or a column ``developable`` of 0/1; land the file does
    not cover gets weight 0. ``water`` and ``urban`` (polygons) and ``metro``
    (lines, with a ``ref`` column) replace the shipped vector layers. Every
    file must have a CRS and overlap Hangzhou's districts. ``anchor_firms``,
    ``anchor_revenue_series`` and ``compute_centres`` replace the tables the
    engine synthesizes the base year from (columns in ``TABLES``): every data
    file a run reads comes through here, so ``files`` lists (and manifests
    hash) them all.
    """
    data_dir = Path(data_dir)
    files = {
        "districts": Path(districts or data_dir / "districts.geojson"),
        "anchors": Path(anchors or data_dir / "anchors.geojson"),
        "zones": Path(zones or data_dir / "zones.csv"),
        "district_stats": Path(district_stats or data_dir / "district_stats.csv"),
        "land": Path(land or data_dir / "land.tif"),
        "water": Path(water or data_dir / "water.geojson"),
        "urban": Path(urban or data_dir / "urban.geojson"),
        "metro": Path(metro or data_dir / "metro.geojson"),
        "anchor_firms": Path(anchor_firms or data_dir / "anchor_firms.csv"),
        "anchor_revenue_series": Path(anchor_revenue_series or data_dir / "anchor_revenue_series.csv"),
        "compute_centres": Path(compute_centres or data_dir / "compute_centres.csv"),
    }
    district_frame = read_layer(files["districts"], geometry=POLYGON, columns=("code", "name_zh", "name_en"), repair=repair)
    zone_table = read_table(files["zones"], ("zone", "name_zh", "name_en", "districts", "file", "approximate", "basis", "source"))
    zone_frame, zone_sources = _build_zones(zone_table, files["zones"], district_frame, zone_files or {}, repair)
    files.update(zone_sources)
    anchor_frame = read_layer(files["anchors"], geometry=POINT, columns=("name_zh", "name_en", "kind"), repair=repair)
    stats = read_table(files["district_stats"], ("code", "name_zh", "gdp_2022_cny", "population_2020"))
    _check_stats(stats, files["district_stats"], district_frame)
    _check_extent(files["districts"], district_frame)
    grid = Grid.covering(district_frame, cell_m=cell_m)
    city = shapely.union_all(district_frame.geometry.values)
    doubts = _check_zones(zone_frame, zone_table, files["zones"], district_frame, zone_files or {}, zone_sources, grid, city, repair)
    water_frame, urban_frame = (_city_layer(files[k], POLYGON, (), city, repair) for k in ("water", "urban"))
    metro_frame = _city_layer(files["metro"], LINE, ("ref",), city, repair)
    land_source = LandSource.read(files["land"], city, repair)
    tables = [read_table(files[name], columns) for name, columns in TABLES.items()]
    return LayerStack(district_frame, zone_frame, anchor_frame, stats, grid, water_frame, urban_frame, metro_frame, land_source,
                      *tables, files, doubts)


TABLES = {
    "anchor_firms": ("id", "track", "revenue_cny", "revenue_status", "parent", "founded"),
    "anchor_revenue_series": ("id", "year", "revenue_cny"),
    "compute_centres": ("anchor_id", "pflops", "online_year"),
}
"""The tables the engine reads beside the layers, with their required columns (read as strings; the engine checks values)."""


HANGZHOU_EXTENT = (118.0, 29.0, 121.0, 30.8)
"""West, south, east, north (degrees) of a box around Hangzhou's districts; the districts must fall in it."""

GCJ02_SUSPECT_M = 200.0
"""A user boundary more than this far from the shipped one, and under half as far after a GCJ-02 shift, is flagged."""


def _check_extent(path: Path, frame: gpd.GeoDataFrame) -> None:
    """The districts define the city: they must lie around Hangzhou (a wrong CRS or city lands elsewhere)."""
    west, south, east, north = frame.total_bounds
    box = shapely.box(*HANGZHOU_EXTENT)
    if not box.contains(shapely.box(west, south, east, north)):
        raise InputError(path, "extent", f"lies at {west:.2f}..{east:.2f}E {south:.2f}..{north:.2f}N, outside Hangzhou "
                                         f"({HANGZHOU_EXTENT[0]:g}..{HANGZHOU_EXTENT[2]:g}E {HANGZHOU_EXTENT[1]:g}..{HANGZHOU_EXTENT[3]:g}N)")


def _check_zones(zones: gpd.GeoDataFrame, table: pd.DataFrame, table_path: Path, districts: gpd.GeoDataFrame,
                 overrides: Mapping[str, PathLike], sources: Mapping[str, Path], grid: Grid, city: shapely.Geometry,
                 repair: bool) -> list[str]:
    """Every zone must cover a grid cell of the city (or a lever on it acts on nothing), and a user zone
    boundary must overlap the city: one rule for shipped and user boundaries, whatever the cell size.

    Returns warnings for boundaries that line up with the shipped ones only
    after a GCJ-02 to WGS-84 shift: 高德 coordinates labelled EPSG:4326.
    """
    for zone, file in sorted(overrides.items()):
        check_overlap(Path(file), zones.geometry.iloc[_zone_row(zones, zone)], city)
    in_city = grid.rasterize(districts, dtype="uint8") > 0
    for row, zone in enumerate(zones["zone"]):
        cells = grid.rasterize(zones.iloc[[row]], dtype="uint8") > 0  # by cell centre, as the zone raster levers use
        if not (cells & in_city).any():
            file = overrides.get(zone) or sources.get(f"zone:{zone}") or table_path
            raise InputError(file, "extent", f"zone {zone} covers no {grid.cell_m:g} m cell of the city (grid.cell_m); "
                                             "a lever on it would act on nothing")
    if not overrides:
        return []
    shipped, _ = _build_zones(table, table_path, districts, {}, repair)
    doubts = []
    for zone, file in sorted(overrides.items()):
        row = _zone_row(zones, zone)
        shift = _gcj02_shift_m(zones.geometry.iloc[row], shipped.geometry.iloc[row])
        if shift is not None:
            doubts.append(f"{escape(file)}: zone {escape(zone)} lines up with the shipped boundary only after a GCJ-02 shift "
                          f"({shift[0]:.0f} m off as given, {shift[1]:.0f} m after); it may be 高德 GCJ-02 coordinates labelled EPSG:4326")
    return doubts


def _zone_row(zones: gpd.GeoDataFrame, zone: str) -> int:
    """Row of ``zone`` in the zone frame."""
    return int(np.flatnonzero(zones["zone"].to_numpy() == zone)[0])


def _gcj02_shift_m(geom: shapely.Geometry, reference: shapely.Geometry) -> tuple[float, float] | None:
    """(metres off as given, metres off after GCJ-02 -> WGS-84) when the shift clearly helps, else None."""
    from .gcj02 import geometry_gcj02_to_wgs84

    shifted = geometry_gcj02_to_wgs84(np.array([geom], dtype=object))[0]
    metric = gpd.GeoSeries([geom, shifted, reference], crs=WGS84).to_crs(METRIC_CRS).simplify(10.0).to_numpy()
    raw, after = shapely.hausdorff_distance(metric[0], metric[2]), shapely.hausdorff_distance(metric[1], metric[2])
    return (float(raw), float(after)) if raw > GCJ02_SUSPECT_M and after < 0.5 * raw else None


def _city_layer(path: Path, geometry: tuple[str, ...], columns: tuple[str, ...], city: shapely.Geometry, repair: bool) -> gpd.GeoDataFrame:
    """Read a vector layer that must overlap the city (water, built-up land, metro)."""
    frame = read_layer(path, geometry=geometry, columns=columns, repair=repair)
    check_overlap(path, shapely.union_all(frame.geometry.values), city)
    return frame


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV the loader depends on, failing clearly when it is absent or short of columns."""
    require_file(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, "file", f"cannot be read as CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(path, "columns", f"missing required column(s) {', '.join(missing)}")
    if table.empty:
        raise InputError(path, "table", "is empty")
    return table


def _build_zones(
    table: pd.DataFrame,
    table_path: Path,
    districts: gpd.GeoDataFrame,
    overrides: Mapping[str, PathLike],
    repair: bool,
) -> tuple[gpd.GeoDataFrame, dict[str, Path]]:
    """Turn the zone table into polygons: a boundary file where given, else a union of districts."""
    unknown = sorted(set(overrides) - set(table["zone"]))
    if unknown:
        raise InputError(table_path, "zone_files", f"unknown zone id(s) {', '.join(unknown)}; the zones are {', '.join(table['zone'])}")
    by_name = dict(zip(districts["name_zh"], districts.geometry.values))
    claimed = {d for spec in table["districts"] for d in _names(spec) if spec != "*"}
    geoms, used = [], {}
    for i, row in table.iterrows():
        file = overrides.get(row["zone"]) or (table_path.parent / row["file"] if row["file"] else None)
        if file is not None:
            layer = read_layer(file, geometry=POLYGON, repair=repair)
            geoms.append(shapely.union_all(layer.geometry.values))
            used[f"zone:{row['zone']}"] = Path(file)
            continue
        names = sorted(set(by_name) - claimed) if row["districts"] == "*" else _names(row["districts"])
        missing = [n for n in names if n not in by_name]
        if missing or not names:
            raise InputError(table_path, f"row {i + 2} ({row['zone']})", f"unknown district(s) {', '.join(missing) or '(none given)'}; known: {', '.join(by_name)}")
        geoms.append(shapely.union_all([by_name[n] for n in names]))
    frame = gpd.GeoDataFrame(table.drop(columns=["file"]), geometry=geoms, crs=WGS84)
    frame["approximate"] = frame["approximate"].str.lower().isin(["true", "yes", "1"])
    frame["area_km2"] = frame.to_crs(METRIC_CRS).area / 1e6
    return frame, used


def _names(spec: str) -> list[str]:
    """Split a ';'-separated district list."""
    return [s.strip() for s in spec.split(";") if s.strip()]


def _check_stats(stats: pd.DataFrame, path: Path, districts: gpd.GeoDataFrame) -> None:
    """District statistics must name the same districts as the boundaries, once each."""
    extra = sorted(set(stats["name_zh"]) - set(districts["name_zh"]))
    if extra:
        raise InputError(path, "name_zh", f"district(s) {', '.join(extra)} are not in the districts layer")
    missing = sorted(set(districts["name_zh"]) - set(stats["name_zh"]))
    if missing:
        raise InputError(path, "name_zh", f"no statistics for district(s) {', '.join(missing)}")
    for column in ("gdp_2022_cny", "population_2020"):
        values = pd.to_numeric(stats[column], errors="coerce")
        if values.isna().any() or (values <= 0).any():
            raise InputError(path, column, "every district needs a positive number")
