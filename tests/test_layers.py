"""Loading validates user files and lets any zone be replaced without touching code."""

from __future__ import annotations

import shutil

import geopandas as gpd
import numpy as np
import pytest
import shapely

import layers
from layers import GIS_DATA, InputError


def _copy_data(tmp_path):
    """A writable copy of the shipped data folder."""
    target = tmp_path / "gis_data"
    shutil.copytree(GIS_DATA, target, ignore=shutil.ignore_patterns("*.py", "sources", "checks"))
    return target


def test_layers_are_wgs84_and_the_grid_is_cgcs2000(stack):
    for frame in (stack.districts, stack.zones, stack.anchors):
        assert frame.crs.to_epsg() == 4326
    assert stack.grid.crs.to_epsg() == 4549
    assert stack.grid.cell_m == 250
    assert list(stack.zones["zone"]) == ["window", "core", "four", "wide"]


def test_zone_raster_gives_the_window_park_priority(stack):
    zone = stack.zone_raster
    district = stack.district_raster
    names = stack.districts["name_zh"].to_numpy()
    window = zone == 0
    assert window.sum() * stack.grid.cell_area_km2 == pytest.approx(13.48, rel=0.05)
    assert set(names[district[window]]) <= {"萧山区", "滨江区"}
    assert set(names[district[zone == 1]]) == {"萧山区", "滨江区"}
    assert ((zone >= 0) == (district >= 0)).all()


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.gpkg: file: not found"):
        layers.load(districts=tmp_path / "nowhere.gpkg")


def test_file_without_crs_is_rejected(tmp_path, stack):
    path = tmp_path / "anchors.shp"
    stack.anchors[["name_zh", "name_en", "kind", "geometry"]].set_crs(None, allow_override=True).to_file(path)
    assert not path.with_suffix(".prj").exists()
    with pytest.raises(InputError, match=r"anchors\.shp: crs: the file has no coordinate reference system"):
        layers.load(anchors=path)


def test_invalid_geometry_is_rejected_or_repaired(tmp_path):
    bowtie = shapely.Polygon([(120.18, 30.10), (120.24, 30.15), (120.24, 30.10), (120.18, 30.15)])
    path = tmp_path / "window.gpkg"
    gpd.GeoDataFrame({"name_zh": ["自交"]}, geometry=[bowtie], crs=4326).to_file(path)
    with pytest.raises(InputError, match=r"window\.gpkg: feature 0 \(自交\): invalid geometry \(Self-intersection"):
        layers.load(zone_files={"window": path})
    repaired = layers.load(zone_files={"window": path}, repair=True)
    assert repaired.zones.geometry.iloc[0].is_valid
    assert repaired.zones.geometry.iloc[0].area == pytest.approx(shapely.make_valid(bowtie).area)


def test_empty_layer_is_rejected(tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(InputError, match=r"empty\.geojson: layer: is empty"):
        layers.load(anchors=path)


def test_wrong_geometry_type_is_rejected(tmp_path, stack):
    path = tmp_path / "anchors.gpkg"
    stack.districts.rename(columns={"code": "kind"}).to_file(path)
    with pytest.raises(InputError, match="geometry type .*Polygon where Point is expected"):
        layers.load(anchors=path)


def test_official_boundary_file_replaces_a_zone(tmp_path, stack):
    official = shapely.box(120.20, 30.11, 120.23, 30.14)
    path = tmp_path / "official_window.gpkg"
    gpd.GeoDataFrame({"name": ["official"]}, geometry=[official], crs=4326).to_crs(3857).to_file(path)
    loaded = layers.load(zone_files={"window": path})
    got = loaded.zones.set_index("zone").loc["window"].geometry
    assert got.symmetric_difference(official).area < 1e-9
    assert loaded.files["zone:window"] == path
    with pytest.raises(InputError, match="unknown zone id"):
        layers.load(zone_files={"fifth": path})


def test_zone_table_edit_changes_the_four_districts(tmp_path):
    data = _copy_data(tmp_path)
    table = (data / "zones.csv").read_text(encoding="utf-8")
    (data / "zones.csv").write_text(table.replace("西湖区;余杭区;临平区;钱塘区", "西湖区;余杭区;临平区;临安区"), encoding="utf-8")
    loaded = layers.load(data)
    four = loaded.zones.set_index("zone").loc["four"]
    linan = loaded.districts.set_index("name_zh").loc["临安区"].geometry
    assert four.geometry.contains(linan.representative_point())
    (data / "zones.csv").write_text(table.replace("西湖区;余杭区;临平区;钱塘区", "西湖区;余杭区;东湖区"), encoding="utf-8")
    with pytest.raises(InputError, match=r"zones\.csv: row 4 \(four\): unknown district\(s\) 东湖区"):
        layers.load(data)


def test_summary_reports_the_layers(stack):
    text = stack.summary()
    assert "districts: 13" in text and "一园" in text and "approximate" in text
    assert f"{stack.grid.shape[0]} x {stack.grid.shape[1]} cells of 250 m" in text
    assert np.isfinite(stack.grid.bounds).all()


def test_district_statistics_must_be_complete_numbers(tmp_path):
    data = _copy_data(tmp_path)
    stats = (data / "district_stats.csv").read_text(encoding="utf-8")
    (data / "district_stats.csv").write_text(stats.replace(",1323467,", ",unknown,"), encoding="utf-8")
    with pytest.raises(InputError, match=r"district_stats\.csv: population_2020: every district needs a positive number"):
        layers.load(data)
