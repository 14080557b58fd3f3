"""Water holds nothing, built-up land carries the floor space, and a planner's land layer replaces ours."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine

import layers
from layers import GIS_DATA, METRIC_CRS, InputError

ROOT = Path(__file__).resolve().parent.parent
WEST_LAKE = (120.142, 30.246)
QIANDAO_LAKE = (118.95, 29.55)
QIANTANG_BINJIANG = (120.20, 30.225)  # mid-river between 滨江 and 上城, where the district boundary runs
BINJIANG_BOX = (120.16, 30.16, 120.25, 30.22)  # 滨江's built core, south of the river


def _cell(stack: layers.LayerStack, lon: float, lat: float) -> tuple[int, int]:
    """Row and column of the grid cell holding a WGS-84 point."""
    point = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs=4326)
    return np.unravel_index(stack.grid.cells_of_points(point)[0], stack.grid.shape)


def _anchor_cell(stack: layers.LayerStack, ident: str) -> tuple[int, int]:
    point = stack.anchors.loc[stack.anchors["id"] == ident].geometry.iloc[0]
    return _cell(stack, point.x, point.y)


def _write_raster(path: Path, data: np.ndarray, west: float, north: float, step: float, crs: str | None = "EPSG:4326", nodata=None) -> Path:
    """A single-band float32 GeoTIFF in degrees, written by rasterio."""
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1, "dtype": "float32",
               "transform": Affine(step, 0, west, 0, -step, north), "nodata": nodata}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32), 1)
    return path


def test_shipped_layers_load_in_wgs84_with_their_columns(stack):
    assert {"land", "water", "urban", "metro"} <= set(stack.files)
    for frame, columns in ((stack.water, {"id", "name_zh", "name_en", "kind", "source", "approximate"}),
                           (stack.urban, {"id", "name_zh", "name_en", "kind", "source", "approximate"}),
                           (stack.metro, {"ref", "name", "colour", "source"})):
        assert frame.crs.to_epsg() == 4326 and columns <= set(frame.columns)
    assert set(stack.water["kind"]) == {"lake", "river", "estuary"}
    assert stack.water.set_index("id").loc[["west_lake", "xianghu"], "approximate"].all()
    assert stack.metro["colour"].str.fullmatch(r"#[0-9A-F]{6}").all() and stack.metro["ref"].is_unique
    with rasterio.open(GIS_DATA / "land.tif") as src:
        assert src.crs.to_epsg() == 4549 and src.res == (100.0, 100.0) and src.dtypes[0] == "float32"
        values = src.read(1)
    assert np.nanmin(values) == 0 and np.nanmax(values) == 1
    assert "land: land.tif; water: 8 bodies" in stack.summary()


def test_land_raster_is_a_weight_that_is_zero_off_the_city_and_on_water(stack):
    land = stack.land_raster
    assert land.dtype == np.float32 and land.shape == stack.grid.shape
    assert land.min() == 0 and land.max() <= 1
    assert (land[~stack.city_mask] == 0).all() and (land[stack.water_raster] == 0).all()
    city = stack.city_mask
    assert 0.85 < (land[city] > 0).mean() < 0.99
    assert 0.05 < stack.built_raster[city].mean() < 0.20
    assert 0.03 < stack.water_raster[city].mean() < 0.10


@pytest.mark.parametrize("point", [WEST_LAKE, QIANDAO_LAKE, QIANTANG_BINJIANG], ids=["West Lake", "千岛湖", "钱塘江 at 滨江"])
def test_lakes_and_the_river_are_water_with_no_land(stack, point):
    cell = _cell(stack, *point)
    assert stack.water_raster[cell] and stack.land_raster[cell] == 0 and not stack.built_raster[cell]


def test_every_cell_inside_west_lake_holds_nothing(stack):
    lake = stack.water[stack.water["id"] == "west_lake"]
    inside = stack.grid.rasterize(lake, dtype="uint8").astype(bool)
    assert inside.sum() * stack.grid.cell_area_km2 == pytest.approx(6.39, rel=0.15)
    assert (stack.land_raster[inside] == 0).all()


@pytest.mark.parametrize("anchor", ["hikvision_hq", "future_sci_city"])
def test_vision_valley_anchors_sit_on_built_up_land(stack, anchor):
    cell = _anchor_cell(stack, anchor)
    assert stack.built_raster[cell] and stack.land_raster[cell] > 0.95 and stack.built_distance_m[cell] == 0


def test_no_anchor_firm_sits_on_water(stack):
    firms = pd.read_csv(GIS_DATA / "anchor_firms.csv")
    wet = [ident for ident in firms["id"] if stack.water_raster[_anchor_cell(stack, ident)]]
    assert not wet


def test_built_up_land_outweighs_the_mountains_of_chunan(stack):
    chunan = stack.district_raster == int(np.flatnonzero(stack.districts["name_zh"] == "淳安县")[0])
    land = stack.land_raster
    remote = chunan & (stack.built_distance_m > 3000) & ~stack.water_raster
    assert land[remote].max() <= 0.08 and land[chunan & stack.built_raster].mean() > 0.8


def test_metro_distance_is_zero_on_a_line_and_grows_away(stack):
    line = stack.metro.set_index("ref").loc["1"].geometry
    on = shapely.get_coordinates(line)[::50]
    cells = stack.grid.cells_of_points(gpd.GeoSeries(gpd.points_from_xy(on[:, 0], on[:, 1]), crs=4326))
    assert (stack.metro_distance_m.ravel()[cells] == 0).all()
    probes = gpd.GeoSeries(gpd.points_from_xy([120.10, 119.69, 119.04], [30.10, 29.80, 29.62]), crs=4326)  # 萧山, 桐庐, 淳安
    exact = probes.to_crs(METRIC_CRS).distance(stack.metro.to_crs(METRIC_CRS).union_all()).to_numpy()
    got = stack.metro_distance_m.ravel()[stack.grid.cells_of_points(probes)]
    assert np.all(np.diff(exact) > 0) and np.all(np.diff(got) > 0)
    np.testing.assert_allclose(got, exact, atol=1.5 * stack.grid.cell_m)


def test_user_raster_in_wgs84_replaces_the_land_layer_by_area_average(tmp_path, stack):
    """1 west of 120.002E, 0.2 east of it: cells either side read their value, cells the edge cuts a mix.

    120E is the grid's central meridian (x = 500 km), so the edge runs down the cells east of it.
    """
    step = 0.002
    lon = 118.0 + step * (np.arange(1500) + 0.5)
    data = np.tile(np.where(lon < 120.002, 1.0, 0.2), (1000, 1))
    path = _write_raster(tmp_path / "official.tif", data, 118.0, 31.0, step)
    user = layers.load(land=path)
    x = user.grid.centre_of(np.arange(user.grid.size))[0].reshape(user.grid.shape)
    dry = user.city_mask & ~user.water_raster
    assert np.allclose(user.land_raster[dry & (x < 499_000)], 1.0)
    assert np.allclose(user.land_raster[dry & (x > 501_000)], 0.2)
    mixed = user.land_raster[dry & (x == 500_125)]
    assert mixed.size and ((mixed > 0.7) & (mixed < 0.9)).mean() > 0.9
    assert user.files["land"] == path


def test_user_vector_with_developable_moves_the_floor_space(tmp_path, stack):
    boxes = [shapely.box(*BINJIANG_BOX), shapely.box(119.90, 30.00, 120.00, 30.10)]
    path = tmp_path / "official_landuse.gpkg"
    gpd.GeoDataFrame({"developable": [0, 1]}, geometry=boxes, crs=4326).to_crs(METRIC_CRS).to_file(path)
    user = layers.load(land=path)
    assert user.land_raster[_anchor_cell(user, "hikvision_hq")] == 0
    fuyang = user.grid.rasterize(gpd.GeoDataFrame(geometry=boxes[1:], crs=4326), dtype="uint8").astype(bool) & ~user.water_raster
    assert stack.land_raster[fuyang].mean() < 0.5 and (user.land_raster[fuyang] == 1).mean() > 0.9  # edge cells are part-covered
    assert user.land_raster[_anchor_cell(user, "future_sci_city")] == 0  # the file does not cover it


def test_user_vector_weight_is_area_averaged(tmp_path):
    half = shapely.box(119.90, 30.00, 119.95, 30.10)
    path = tmp_path / "weights.geojson"
    gpd.GeoDataFrame({"weight": [0.6]}, geometry=[half], crs=4326).to_file(path)
    user = layers.load(land=path)
    land = user.land_raster
    assert land[_cell(user, 119.925, 30.05)] == pytest.approx(0.6)
    assert set(np.round(np.unique(land), 6)) - {0.0, 0.6}, "cells on the box's edge should hold a partial weight"
    assert land.max() == pytest.approx(0.6) and land[_cell(user, 120.2, 30.2)] == 0


def _no_crs_tif(tmp_path):
    return _write_raster(tmp_path / "nocrs.tif", np.ones((10, 10)), 120.0, 30.3, 0.01, crs=None)


def _beijing_tif(tmp_path):
    return _write_raster(tmp_path / "beijing.tif", np.ones((10, 10)), 116.3, 40.0, 0.01)


def _too_high_tif(tmp_path):
    data = np.full((50, 50), 0.5)
    data[3, 4] = 2.5
    return _write_raster(tmp_path / "percent.tif", data, 120.0, 30.3, 0.01, nodata=-9999)


def _directory(tmp_path):
    path = tmp_path / "land.gpkg"
    path.mkdir()
    return path


def _fifo(tmp_path):
    path = tmp_path / "pipe.tif"
    os.mkfifo(path)
    return path


def _no_column(tmp_path):
    path = tmp_path / "zoning.gpkg"
    gpd.GeoDataFrame({"class": ["城镇"]}, geometry=[shapely.box(*BINJIANG_BOX)], crs=4326).to_file(path)
    return path


def _text_weight(tmp_path):
    path = tmp_path / "text.geojson"
    gpd.GeoDataFrame({"weight": ["0.5", "high"]}, geometry=[shapely.box(*BINJIANG_BOX), shapely.box(120.0, 30.0, 120.1, 30.1)], crs=4326).to_file(path)
    return path


def _no_crs_shp(tmp_path):
    path = tmp_path / "nocrs.shp"
    gpd.GeoDataFrame({"weight": [1.0]}, geometry=[shapely.box(*BINJIANG_BOX)]).to_file(path)
    return path


def _empty_over_city_tif(tmp_path):
    return _write_raster(tmp_path / "holes.tif", np.full((100, 100), -1.0), 119.5, 30.5, 0.01, nodata=-1.0)


BAD_LAND = {
    "raster without CRS": (_no_crs_tif, r"nocrs\.tif: crs: the raster has no coordinate reference system"),
    "raster outside Hangzhou": (_beijing_tif, r"beijing\.tif: extent: lies at 116\.30\.\.116\.40E .* outside Hangzhou"),
    "values out of range": (_too_high_tif, r"percent\.tif: band 1: values run from 0\.5 to 2\.5; the land weight must lie in \[0, 1\]"),
    "all nodata": (_empty_over_city_tif, r"holes\.tif: band 1: has no valid values"),
    "directory": (_directory, r"land\.gpkg: file: is a folder"),
    "FIFO": (_fifo, r"pipe\.tif: file: is a pipe \(FIFO\)"),
    "missing column": (_no_column, r"zoning\.gpkg: columns: needs a numeric column weight \(0\.\.1\) or developable \(0/1\); found class"),
    "non-numeric weight": (_text_weight, r"text\.geojson: feature 1: weight is 'high'; it must be a number in \[0, 1\]"),
    "vector without CRS": (_no_crs_shp, r"nocrs\.shp: crs: the file has no coordinate reference system"),
    "missing file": (lambda tmp_path: tmp_path / "nowhere.tif", r"nowhere\.tif: file: not found"),
}


@pytest.mark.parametrize("case", BAD_LAND, ids=list(BAD_LAND))
def test_bad_land_file_fails_fast_with_one_line_naming_it(tmp_path, case):
    make, pattern = BAD_LAND[case]
    path = make(tmp_path)
    signal.alarm(20)  # a FIFO opened for reading would block forever: fail instead of hanging
    try:
        start = time.perf_counter()
        with pytest.raises(InputError, match=pattern) as caught:
            layers.load(land=path)
        assert time.perf_counter() - start < 10
    finally:
        signal.alarm(0)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_land_that_covers_no_city_cell_is_an_input_error(tmp_path):
    """Overlapping the city's outline is not enough: the weights must reach the cells."""
    sliver = shapely.box(120.2000, 30.2000, 120.2001, 30.2001)
    path = tmp_path / "sliver.gpkg"
    gpd.GeoDataFrame({"weight": [1.0]}, geometry=[sliver], crs=4326).to_file(path)
    stack = layers.load(land=path)
    with pytest.raises(InputError, match=r"sliver\.gpkg: extent: covers no cell of Hangzhou's districts"):
        _ = stack.land_raster


@pytest.mark.parametrize("layer", ["water", "urban", "metro"])
def test_user_vector_layers_are_checked_like_the_others(tmp_path, layer):
    frame = gpd.read_file(GIS_DATA / f"{layer}.geojson").translate(xoff=-5.0)  # moved into 安徽/江西
    path = tmp_path / f"{layer}.gpkg"
    gpd.GeoDataFrame({"ref": ["x"] * len(frame)}, geometry=frame.values, crs=4326).to_file(path)
    with pytest.raises(InputError, match=rf"{layer}\.gpkg: extent: lies at .* outside Hangzhou's districts"):
        layers.load(**{layer: path})


def test_metro_without_ref_is_rejected(tmp_path, stack):
    path = tmp_path / "metro.geojson"
    stack.metro.drop(columns=["ref"]).to_file(path)
    with pytest.raises(InputError, match=r"metro\.geojson: columns: missing required column\(s\) ref"):
        layers.load(metro=path)


def test_user_water_layer_empties_its_cells(tmp_path, stack):
    pond = shapely.box(*BINJIANG_BOX)
    path = tmp_path / "water.gpkg"
    gpd.GeoDataFrame({"name_zh": ["试验水面"]}, geometry=[pond], crs=4326).to_file(path)
    user = layers.load(water=path)
    hik = _anchor_cell(user, "hikvision_hq")
    assert user.water_raster[hik] and user.land_raster[hik] == 0 and not user.built_raster[hik]
    assert not user.water_raster[_cell(user, *WEST_LAKE)]  # the user's file replaces ours entirely


def test_scenario_with_a_bad_land_file_exits_2_with_one_line(tmp_path):
    _too_high_tif(tmp_path)
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("name: x\nlayers: {land: percent.tif}\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "run_scenario.py", str(scenario), "--out", str(tmp_path / "out"), "--quiet"],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "percent.tif: band 1: values run from 0.5 to 2.5" in lines[0]
    assert not (tmp_path / "out").exists()
