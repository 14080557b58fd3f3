"""The land steps of build.py: water, built-up land, the developable-land raster and the metro.

Firms and homes must not sit on 千岛湖, the 钱塘江 or West Lake, and floor
space must follow built-up land rather than being flat within a district. No
land-use raster is reachable as open data here, so this derives a coarse but
honest substitute from Natural Earth, GSHHG, ETOPO5 and OpenStreetMap, plus
hand-drawn outlines flagged ``approximate``. Every constant below is an
assumption stated, with its reason, in gis_data/README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.warp
import shapely
from affine import Affine
from rasterio.enums import Resampling
from shapely import affinity

from layers.grid import METRIC_CRS, Grid
from layers.vector import WGS84

HERE = Path(__file__).resolve().parent
LAND_CELL_M = 100.0
"""Cells of land.tif: fine enough that a 300 m river is three cells wide, small enough to ship."""

WEST_LAKE_KM2 = 6.39  # https://en.wikipedia.org/wiki/West_Lake (surface area 6.39 km², 3.2 km N-S x 2.8 km E-W)
RIVER_REACHES = (
    # (id, west lon, east lon, full width m, name_zh, name_en): ASSUMED widths of the NE centre line, east to west
    ("qiantang_wenyan", 120.10, 121.00, 1200.0, "钱塘江 (闻堰以下)", "Qiantang River below Wenyan"),
    ("fuchun_lower", 119.93, 120.10, 800.0, "富春江 (富阳—闻堰)", "Fuchun River, Fuyang to Wenyan"),
    ("fuchun_upper", 119.68, 119.93, 500.0, "富春江 (桐庐—富阳)", "Fuchun River, Tonglu to Fuyang"),
    ("xinan_tong", 119.19, 119.68, 300.0, "新安江/桐江 (新安江大坝—桐庐)", "Xin'an and Tong rivers, Xin'anjiang dam to Tonglu"),
)
PLATFORM_RADIUS_M = 2000.0
"""ASSUMED built-up radius around each platform anchor: a 12.6 km² disc, the size of a built science-city core."""
RURAL_LOW, RURAL_HIGH = 0.08, 0.01
"""ASSUMED weight of open land at or below LOW_M and at or above HIGH_M of ETOPO5 elevation (farmland vs forested hills)."""
LOW_M, HIGH_M = 50.0, 300.0
FRINGE_WEIGHT, FRINGE_M = 0.5, 2000.0
"""ASSUMED urban fringe: the weight falls from FRINGE_WEIGHT next to built-up land to the rural weight FRINGE_M away."""

Writer = Callable[[gpd.GeoDataFrame, str], None]


def build_land(raw: Path, districts: gpd.GeoDataFrame, write: Writer) -> None:
    """Write water.geojson, urban.geojson, metro.geojson and land.tif from the raw open data in ``raw``."""
    if not raw.is_dir():
        raise SystemExit(f"raw geodata folder {raw} not found: pass --raw DIR (see gis_data/README.md)")
    city = shapely.union_all(districts.geometry.values)
    water = build_water(raw, city)
    urban = build_urban(raw, city, water)
    write(water, "water.geojson")
    write(urban, "urban.geojson")
    write(build_metro(raw), "metro.geojson")
    grid, weight = land_weight(raw, districts, water, urban)
    path = HERE / "land.tif"
    grid.write_geotiff(path, {"developable_weight (0 water .. 1 built-up)": weight}, nodata=float("nan"))
    _report(water, urban, weight, grid, path)


def build_water(raw: Path, city: shapely.Geometry) -> gpd.GeoDataFrame:
    """千岛湖, the estuary, the buffered river reaches and the hand-drawn West Lake and 湘湖."""
    rows = [_qiandao_lake(raw), _estuary(raw), *_river_reaches(raw)]
    rows.append(_hand_drawn("west_lake", "西湖", "West Lake", "west_lake_outline.csv", WEST_LAKE_KM2))
    rows.append(_hand_drawn("xianghu", "湘湖", "Xianghu Lake", "xianghu_outline.csv", None))
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)
    frame["geometry"] = frame.geometry.intersection(city.envelope.buffer(0.05))
    return frame[["id", "name_zh", "name_en", "kind", "source", "approximate", "area_km2", "geometry"]]


def _qiandao_lake(raw: Path) -> dict:
    """千岛湖 (新安江水库) from the GSHHG full-resolution lake shore, finer than Natural Earth's 1:10m outline."""
    lines = gpd.read_file(raw / "gshhg_f_hangzhou_lines.geojson")
    shore = lines[lines["kind"] == "lake_shore_L2"].geometry.values
    lake = shapely.polygonize(shore).geoms
    if len(lake) != 1:
        raise SystemExit(f"GSHHG lake shore pieces close into {len(lake)} polygons, expected 千岛湖 alone")
    return _row("qiandao_lake", "千岛湖 (新安江水库)", "Qiandao Lake (Xin'anjiang Reservoir)", "lake",
                "GSHHG 2.3.7 full-resolution lake shore (https://www.soest.hawaii.edu/pwessel/gshhg/), pieces joined at bin edges", False, lake[0])


def _estuary(raw: Path) -> dict:
    """The 钱塘江 estuary: the GSHHG shore line runs up one bank and down the other, closed at its 120.8E cut."""
    lines = gpd.read_file(raw / "gshhg_f_hangzhou_lines.geojson")
    shore = lines[lines["kind"].str.startswith("coast_L1")].geometry.iloc[0]
    coords = list(shore.coords)
    polygon = shapely.Polygon([*coords, coords[0]])
    if not polygon.is_valid:
        raise SystemExit(f"GSHHG estuary shore does not close into a valid polygon: {shapely.is_valid_reason(polygon)}")
    return _row("qiantang_estuary", "钱塘江 (河口段)", "Qiantang River estuary", "estuary",
                "GSHHG 2.3.7 full-resolution shore line (https://www.soest.hawaii.edu/pwessel/gshhg/), closed along 120.8E", False, polygon)


def _river_reaches(raw: Path) -> list[dict]:
    """The Natural Earth centre line cut into reaches, each buffered to its assumed width."""
    rivers = gpd.read_file(raw / "ne_10m_rivers_hangzhou.geojson")
    line = shapely.union_all(rivers[rivers["featurecla"] == "River"].geometry.values)
    rows = []
    for ident, west, east, width, name_zh, name_en in RIVER_REACHES:
        reach = line.intersection(shapely.box(west, -90, east, 90))
        metric = gpd.GeoSeries([reach], crs=WGS84).to_crs(METRIC_CRS).buffer(width / 2)
        rows.append(_row(ident, name_zh, name_en, "river",
                         f"Natural Earth 10m river centre line (https://www.naturalearthdata.com/) buffered to an ASSUMED {width:.0f} m width",
                         True, metric.to_crs(WGS84).iloc[0]))
    return rows


def _hand_drawn(ident: str, name_zh: str, name_en: str, csv: str, area_km2: float | None) -> dict:
    """A lake outline drawn by hand (no open source has it), scaled to a published area when one is known."""
    table = pd.read_csv(HERE / "sources" / csv)
    shape = gpd.GeoSeries([shapely.Polygon(table[["lon", "lat"]].to_numpy())], crs=WGS84).to_crs(METRIC_CRS).iloc[0]
    if area_km2 is not None:
        factor = (area_km2 * 1e6 / shape.area) ** 0.5
        shape = affinity.scale(shape, factor, factor, origin="centroid")
    scaled = f", scaled to the published {area_km2} km² (https://en.wikipedia.org/wiki/West_Lake)" if area_km2 else ""
    outline = gpd.GeoSeries([shape], crs=METRIC_CRS).to_crs(WGS84).iloc[0]
    return _row(ident, name_zh, name_en, "lake", f"APPROXIMATE: drawn by hand from general knowledge, sources/{csv}{scaled}", True, outline)


def _row(ident: str, name_zh: str, name_en: str, kind: str, source: str, approximate: bool, geometry: shapely.Geometry) -> dict:
    """One feature of water.geojson or urban.geojson, with its metric area."""
    return {"id": ident, "name_zh": name_zh, "name_en": name_en, "kind": kind, "source": source,
            "approximate": approximate, "area_km2": _area_km2(geometry), "geometry": geometry}


def _area_km2(geometry: shapely.Geometry) -> float:
    """Area of a WGS-84 geometry in km², measured in the metric CRS."""
    return round(float(gpd.GeoSeries([geometry], crs=WGS84).to_crs(METRIC_CRS).area.iloc[0] / 1e6), 2)


def build_urban(raw: Path, city: shapely.Geometry, water: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Natural Earth's 2002 urban area plus discs around the seat towns and the platforms, minus water, inside the city."""
    urban = gpd.read_file(raw / "ne_50m_urban_areas_hangzhou.geojson")
    rows = [_row("ne_urban", "杭州建成区 (约2002年)", "Hangzhou urban area (about 2002)", "urban",
                 "Natural Earth 50m urban areas, MODIS-era (https://www.naturalearthdata.com/)", False,
                 shapely.union_all(urban.geometry.values))]
    towns = pd.read_csv(HERE / "sources" / "towns.csv")
    rows += [_disc(t.id, t.name_zh, t.name_en, "town", t.lon, t.lat, t.radius_km * 1000, "sources/towns.csv") for t in towns.itertuples()]
    anchors = gpd.read_file(HERE / "anchors.geojson")
    platforms = anchors[anchors["kind"] == "platform"]
    rows += [_disc(p.id, p.name_zh, p.name_en, "platform", p.geometry.x, p.geometry.y, PLATFORM_RADIUS_M, "anchors.geojson")
             for p in platforms.itertuples()]
    wet = shapely.union_all(water.geometry.values)
    for row in rows:
        row["geometry"] = row["geometry"].intersection(city).difference(wet)
        row["area_km2"] = _area_km2(row["geometry"])
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)


def _disc(ident: str, name_zh: str, name_en: str, kind: str, lon: float, lat: float, radius_m: float, where: str) -> dict:
    """An ASSUMED built-up disc around a town seat or platform point, drawn in metres."""
    centre = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=WGS84).to_crs(METRIC_CRS)
    disc = centre.buffer(radius_m, quad_segs=16).to_crs(WGS84).iloc[0]
    return _row(ident, name_zh, name_en, kind, f"APPROXIMATE: {radius_m / 1000:g} km disc around the point in {where}", True, disc)


def build_metro(raw: Path) -> gpd.GeoDataFrame:
    """One MultiLineString per metro line from the OSM route relations, simplified to 20 m."""
    ways = gpd.read_file(raw / "hangzhou_metro_osm_lines.geojson")
    rows = []
    for ref, group in ways.groupby("ref", sort=False):
        merged = shapely.line_merge(shapely.union_all(group.geometry.values))
        simple = gpd.GeoSeries([merged], crs=WGS84).to_crs(METRIC_CRS).simplify(20.0).to_crs(WGS84).iloc[0]
        line = group["name"].iloc[0].split("：")[0]
        rows.append({"ref": str(ref), "name": f"{group['network'].iloc[0]}{line}", "colour": group["colour"].mode().iloc[0].upper(),
                     "source": "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)",
                     "geometry": shapely.MultiLineString(list(getattr(simple, "geoms", [simple])))})
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)
    return frame.iloc[np.argsort([int(r) for r in frame["ref"]], kind="stable")].reset_index(drop=True)


def land_weight(raw: Path, districts: gpd.GeoDataFrame, water: gpd.GeoDataFrame, urban: gpd.GeoDataFrame) -> tuple[Grid, np.ndarray]:
    """The developable weight: 0 on water, 1 built-up, a fringe ramp, then a rural weight falling with elevation."""
    grid = Grid.covering(districts, cell_m=LAND_CELL_M)
    city = grid.rasterize(districts, dtype="uint8").astype(bool)
    wet = grid.rasterize(water, dtype="uint8").astype(bool)
    built = grid.rasterize(urban, dtype="uint8").astype(bool) & ~wet
    rural = np.interp(_elevation(raw, grid), [LOW_M, HIGH_M], [RURAL_LOW, RURAL_HIGH])
    fringe = rural + (FRINGE_WEIGHT - rural) * np.clip(1 - grid.distance_to_cells(built) / FRINGE_M, 0, 1)
    weight = np.where(built, 1.0, np.maximum(rural, fringe))
    weight = np.where(wet, 0.0, np.round(weight, 3))
    return grid, np.where(city, weight, np.nan).astype(np.float32)


def _elevation(raw: Path, grid: Grid) -> np.ndarray:
    """ETOPO5 elevation (m) warped bilinearly onto the grid: 9 km cells, so only high west against low east."""
    with rasterio.open(raw / "etopo5_hangzhou_118.2-120.9E_29.1-30.7N.asc") as src:
        data, transform = src.read(1).astype(np.float32), src.transform
    out = np.zeros(grid.shape, dtype=np.float32)
    rasterio.warp.reproject(data, out, src_transform=Affine(*transform[:6]), src_crs=WGS84,
                            dst_transform=grid.transform, dst_crs=grid.crs, resampling=Resampling.bilinear)
    return out


def _report(water: gpd.GeoDataFrame, urban: gpd.GeoDataFrame, weight: np.ndarray, grid: Grid, path: Path) -> None:
    """Print the figures gis_data/README.md quotes, so a rebuild shows whether they moved."""
    city = ~np.isnan(weight)
    for row in water.itertuples():
        print(f"  water {row.id}: {row.area_km2:,.2f} km²")
    print(f"  built-up: {urban.to_crs(METRIC_CRS).union_all().area / 1e6:,.0f} km² in {len(urban)} features")
    print(f"  land.tif {grid.shape[0]} x {grid.shape[1]} cells of {grid.cell_m:g} m, {path.stat().st_size / 1e3:,.0f} kB: "
          f"{(weight[city] == 0).mean():.1%} water, {(weight[city] == 1).mean():.1%} built-up, "
          f"{(weight[city] > 0).mean():.1%} developable, mean weight {weight[city].mean():.3f}")
