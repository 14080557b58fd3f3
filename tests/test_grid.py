"""The analysis grid: rasterizing, cell indices, distances and GeoTIFF I/O with real files."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS

from layers import METRIC_CRS, Grid, InputError
from twin.outputs.rasters import write_geotiff


def test_rasterizing_preserves_each_district_area(stack):
    cells = np.bincount(stack.district_raster[stack.city_mask], minlength=len(stack.districts))
    np.testing.assert_allclose(cells * stack.grid.cell_area_km2, stack.districts["area_km2"], rtol=0.02)


def test_rasterizing_a_small_polygon_at_a_finer_grid_preserves_area(stack):
    window = stack.zones[stack.zones["zone"] == "window"]
    fine = Grid.covering(window, cell_m=50)
    assert fine.rasterize(window).sum() * fine.cell_area_km2 == pytest.approx(window["area_km2"].iloc[0], rel=0.02)


def test_points_map_to_cells_and_back(stack):
    grid = stack.grid
    cells = grid.cells_of_points(stack.anchors)
    assert (cells >= 0).all()
    x, y = grid.centre_of(cells)
    pts = stack.anchors.to_crs(METRIC_CRS).geometry
    assert np.abs(x - pts.x).max() <= grid.cell_m / 2 and np.abs(y - pts.y).max() <= grid.cell_m / 2
    np.testing.assert_array_equal(grid.cell_of(x, y), cells)
    assert grid.cell_of(np.array([0.0]), np.array([0.0]))[0] == -1


def test_distance_raster_matches_vector_distance(stack):
    window = stack.zones[stack.zones["zone"] == "window"]
    dist = stack.grid.distance_to(window)
    cells = stack.grid.cells_of_points(stack.anchors)
    exact = stack.anchors.to_crs(METRIC_CRS).distance(window.to_crs(METRIC_CRS).geometry.iloc[0]).to_numpy()
    assert np.abs(dist.ravel()[cells] - exact).max() <= 1.5 * stack.grid.cell_m
    assert dist[stack.zone_raster == 0].max() == 0


def test_geotiff_round_trip_keeps_crs_transform_and_band_names(tmp_path, stack):
    grid = stack.grid
    rng = np.random.default_rng(0)
    bands = {str(year): rng.random(grid.shape, dtype=np.float32) for year in (2023, 2024, 2025)}
    path = tmp_path / "density.tif"
    write_geotiff(grid, path, bands)
    with rasterio.open(path) as src:
        assert src.crs == CRS.from_epsg(4549)
        assert src.transform == grid.transform
        assert src.descriptions == ("2023", "2024", "2025")
        np.testing.assert_array_equal(src.read(2), bands["2024"])
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdalinfo (Debian gdal-bin) is not installed")
def test_gdalinfo_reads_the_geotiff(tmp_path, stack):
    path = tmp_path / "bands.tif"
    write_geotiff(stack.grid, path, {"2027": np.ones(stack.grid.shape, np.float32)})
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], check=True, capture_output=True, text=True).stdout)
    assert 'ID["EPSG",4549]' in info["coordinateSystem"]["wkt"]
    assert info["geoTransform"] == list(stack.grid.transform.to_gdal())
    assert info["bands"][0]["description"] == "2027"


def test_user_raster_in_another_crs_is_warped_onto_the_grid(tmp_path, stack):
    """A WGS-84 raster whose value is its longitude reads back as each cell centre's longitude."""
    west, north, step = 118.0, 31.0, 0.01
    lon = west + step * (np.arange(400) + 0.5)
    data = np.tile(lon, (300, 1)).astype(np.float32)
    path = tmp_path / "lon.tif"
    profile = {"driver": "GTiff", "width": 400, "height": 300, "count": 1, "dtype": "float32",
               "crs": "EPSG:4326", "transform": Affine(step, 0, west, 0, -step, north)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    warped = stack.grid.read_raster(path)
    cells = np.flatnonzero(stack.city_mask)[::997]
    x, y = stack.grid.centre_of(cells)
    expected, _ = rasterio.warp.transform(METRIC_CRS, "EPSG:4326", x, y)
    np.testing.assert_allclose(warped.ravel()[cells], expected, atol=step)


def test_raster_errors_name_the_file(tmp_path, stack):
    with pytest.raises(InputError, match="missing.tif: file: not found"):
        stack.grid.read_raster(tmp_path / "missing.tif")
    path = tmp_path / "nocrs.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(InputError, match="nocrs.tif: crs:"):
        stack.grid.read_raster(path)


def test_grid_snaps_to_whole_cells(stack):
    west, south, east, north = stack.grid.bounds
    assert west % 250 == 0 and north % 250 == 0
    assert (east - west) / 250 == stack.grid.shape[1]
