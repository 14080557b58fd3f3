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

from .errors import InputError
from .grid import METRIC_CRS, Grid
from .vector import POINT, POLYGON, WGS84, read_layer

GIS_DATA = Path(__file__).resolve().parent.parent / "gis_data"
"""The shipped data folder; see gis_data/README.md for every file's provenance."""

PathLike = str | os.PathLike[str]


@dataclass
class LayerStack:
    """The validated geography of one run: vectors in WGS-84 plus the analysis grid."""

    districts: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame
    anchors: gpd.GeoDataFrame
    district_stats: pd.DataFrame
    grid: Grid
    files: dict[str, Path] = field(default_factory=dict)

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
    cell_m: float = 250.0,
    repair: bool = False,
) -> LayerStack:
    """Load, validate and reproject the layers; any argument replaces the shipped file.

    ``zones`` is the zone table (which districts make each zone, see
    gis_data/zones.csv); ``zone_files`` maps a zone id to a boundary file that
    replaces that zone's geometry, for example an official 一园 boundary.
    """
    data_dir = Path(data_dir)
    files = {
        "districts": Path(districts or data_dir / "districts.geojson"),
        "anchors": Path(anchors or data_dir / "anchors.geojson"),
        "zones": Path(zones or data_dir / "zones.csv"),
        "district_stats": Path(district_stats or data_dir / "district_stats.csv"),
    }
    district_frame = read_layer(files["districts"], geometry=POLYGON, columns=("code", "name_zh", "name_en"), repair=repair)
    zone_table = read_table(files["zones"], ("zone", "name_zh", "name_en", "districts", "file", "approximate", "basis", "source"))
    zone_frame, zone_sources = _build_zones(zone_table, files["zones"], district_frame, zone_files or {}, repair)
    files.update(zone_sources)
    anchor_frame = read_layer(files["anchors"], geometry=POINT, columns=("name_zh", "name_en", "kind"), repair=repair)
    stats = read_table(files["district_stats"], ("code", "name_zh", "gdp_2022_cny", "population_2020"))
    _check_stats(stats, files["district_stats"], district_frame)
    grid = Grid.covering(district_frame, cell_m=cell_m)
    return LayerStack(district_frame, zone_frame, anchor_frame, stats, grid, files)


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV the loader depends on, failing clearly when it is absent or short of columns."""
    if not path.exists():
        raise InputError(path, "file", "not found")
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
