"""The shipped geography is the real one: areas, places, datum and the window park."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from layers import GIS_DATA, METRIC_CRS
from layers.gcj02 import wgs84_to_gcj02

PUBLISHED_CITY_KM2 = 16_850  # docs/sources.md#s-city


def test_thirteen_districts_add_up_to_the_city(stack):
    districts = stack.districts
    assert len(districts) == 13
    assert districts["code"].str.fullmatch(r"3301\d\d").all() and districts["code"].is_unique
    assert {"临平区", "钱塘区"} <= set(districts["name_zh"])
    area = districts.to_crs(METRIC_CRS).area.sum() / 1e6
    assert area == pytest.approx(PUBLISHED_CITY_KM2, rel=0.01)
    np.testing.assert_allclose(districts["area_km2"], districts.to_crs(METRIC_CRS).area / 1e6, rtol=1e-3)


@pytest.mark.parametrize(
    ("anchor_name", "district"),
    [("浙江大学紫金港校区", "西湖区"), ("钱江世纪城", "萧山区"), ("杭州萧山国际机场", "萧山区")],
)
def test_well_known_places_fall_in_their_district(stack, anchor_name, district):
    row = stack.anchors[stack.anchors["name_zh"] == anchor_name]
    assert len(row) == 1, f"{anchor_name} missing from anchors"
    hosts = stack.districts[stack.districts.contains(row.geometry.iloc[0])]
    assert list(hosts["name_zh"]) == [district]


def test_every_anchor_lies_in_the_district_its_source_names(stack):
    joined = stack.anchors.sjoin(stack.districts[["name_zh", "geometry"]], predicate="within", rsuffix="found")
    assert len(joined) == len(stack.anchors), "an anchor lies outside the city"
    wrong = joined[joined["district_zh"] != joined["name_zh_found"]]
    assert wrong.empty, wrong[["name_zh_left", "district_zh", "name_zh_found"]].to_string()


def test_boundaries_are_wgs84_not_gcj02(stack):
    """Each raw 高德 (GCJ-02) vertex is a stored vertex shifted to GCJ-02, and that shift is 300-700 m."""
    raw = pd.read_csv(GIS_DATA / "checks" / "districts_gcj02_sample.csv")
    metres_per_degree = np.array([96_000.0, 111_000.0])  # at 30°N
    for name, sample in raw.groupby("name_zh"):
        stored = shapely.get_coordinates(stack.districts.loc[stack.districts["name_zh"] == name].geometry.iloc[0])
        shifted = wgs84_to_gcj02(stored)
        for point in sample[["lon_gcj02", "lat_gcj02"]].to_numpy():
            gap = np.hypot(*((shifted - point) * metres_per_degree).T)
            match = gap.argmin()
            assert gap[match] < 1.0, f"{name}: no stored vertex maps onto GCJ-02 vertex {point}"
            offset = np.hypot(*((stored[match] - point) * metres_per_degree))
            assert 300.0 < offset < 700.0, f"{name}: stored vertex is {offset:.0f} m from its GCJ-02 twin"


def test_window_park_is_in_the_cores_with_its_published_area(stack):
    window = stack.zones.set_index("zone").loc["window"]
    cores = shapely.union_all(stack.districts[stack.districts["name_zh"].isin(["萧山区", "滨江区"])].geometry.values)
    assert window["approximate"]
    assert window["area_km2"] == pytest.approx(13.48, rel=0.10)
    outside = shapely.difference(window.geometry, cores)
    assert outside.area <= 0.005 * window.geometry.area  # degree areas: a ratio at one latitude


def test_district_stats_cite_their_sources(stack):
    stats = stack.district_stats
    assert set(stats["name_zh"]) == set(stack.districts["name_zh"])
    assert (stats["gdp_source"].str.startswith("http")).all()
    assert (stats["population_source"].str.startswith("http")).all()
    assert stats["population_2020"].astype(int).sum() == pytest.approx(11_912_247)
