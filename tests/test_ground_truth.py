"""Ground truth: anchors enter with their 2023 revenues, and firms and homes keep to the land.

One run of the baseline at reduced scale (anchors at their real size) is
shared by the tests. The land tests at reduced scale hold at full scale too:
a synthesized firm's cell is drawn in proportion to floor space, which the
land layer sets, so the share of firms on built-up land is a property of the
layer, not of the number of firms (measured at full scale: see README.md,
"Ground truth").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine

import layers
from layers import GIS_DATA, METRIC_CRS
from twin.engine.choice import WeightedSampler
from twin.engine.talent import choose_homes
from twin.model import VisionValleyModel
from twin.policy import scenario
from twin.simulation.run import simulate

ROOT = Path(__file__).resolve().parent.parent
HIKVISION_2023 = 893.40e8  # docs/sources.md#s-hik-2023
DAHUA_2023 = 322.18e8  # docs/sources.md#s-dahua-2023


@pytest.fixture(scope="module")
def run(stack):
    """The baseline 2023-2027 at scale 0.01 with the anchor firms, firm tables for 2023 and 2027."""
    spec = scenario.load(scenario.BASELINE).model_copy(update={"params": {"scale": 0.01}})
    return simulate(spec, seed=1, stack=stack, firm_years=[2023, 2027])


def _anchor(firms: gpd.GeoDataFrame, name_en: str) -> pd.DataFrame:
    return firms[firms["name_en"] == name_en]


def test_base_year_anchors_enter_with_their_2023_revenue(run):
    firms = run.year(2023).firms
    hikvision, dahua = _anchor(firms, "Hikvision HQ"), _anchor(firms, "Dahua Technology HQ")
    assert len(hikvision) == 1 and len(dahua) == 1
    assert abs(hikvision["revenue_cny"].iloc[0] / HIKVISION_2023 - 1) <= 0.03
    assert abs(dahua["revenue_cny"].iloc[0] / DAHUA_2023 - 1) <= 0.05
    assert hikvision["founded"].iloc[0] == 2001 and dahua["founded"].iloc[0] == 2001
    assert set(hikvision["revenue_source"]) == {"sourced"}


def test_a_consolidated_subsidiary_is_never_counted_twice(run, stack):
    table = stack.anchor_firms
    subsidiaries = table[table["parent"] != ""]
    assert "ezviz_hq" in set(subsidiaries["id"])
    names = layers.load().anchors.set_index("id")["name_en"]
    for year in (2023, 2027):
        firms = run.year(year).firms
        assert not firms["name_en"].isin(names[subsidiaries["id"]]).any(), "萤石 is inside 海康威视's revenue"
    base = run.year(2023).firms
    hik_and_ezviz = base.loc[base["name_en"].isin(names[["hikvision_hq", "ezviz_hq"]]), "revenue_cny"].sum()
    assert hik_and_ezviz <= HIKVISION_2023 * 1.03


def test_the_firm_table_says_which_revenues_are_sourced(run, stack):
    firms = run.year(2023).firms
    table = stack.anchor_firms.set_index("id")
    names = layers.load().anchors.set_index("id")["name_en"]
    for ident, status in table.loc[table["parent"] == "", "revenue_status"].items():
        assert set(_anchor(firms, names[ident])["revenue_source"]) == {status}
    assert set(firms.loc[firms["name_en"] == "", "revenue_source"]) == {"synthetic"}
    assert _anchor(firms, names["supcon_hq"])["revenue_source"].iloc[0] == "assumed"  # no published figure
    assert run.year(2023).figures["guishang_firms"] == round(0.01 * 844)  # docs/sources.md#s-guishang-844, scaled


@pytest.mark.parametrize("year", [2023, 2027])
def test_no_firm_on_water_and_most_near_built_up_land(run, year):
    firms = run.year(year).firms.to_crs(METRIC_CRS)
    water = gpd.read_file(GIS_DATA / "water.geojson").to_crs(METRIC_CRS)
    on = gpd.sjoin(firms, water[["name_en", "geometry"]].rename(columns={"name_en": "water"}), predicate="within")
    assert not on["water"].isin(["West Lake", "Qiandao Lake (Xin'anjiang Reservoir)"]).any()
    assert len(on) == 0, on["water"].value_counts().to_dict()
    built = gpd.read_file(GIS_DATA / "urban.geojson").to_crs(METRIC_CRS).union_all()
    assert (firms.geometry.distance(built) <= 3000).mean() >= 0.85


def test_water_holds_no_floor_space_and_no_homes_and_districts_keep_their_totals(run, stack):
    model = VisionValleyModel(seed=1, stack=stack, scale=0.002, anchors=0)
    geo, water = model.geo, stack.water_raster.ravel()
    assert (geo.capacity_m2[water] == 0).all() and (geo.housing[water] == 0).all()
    inside = geo.district >= 0
    built = stack.built_raster.ravel()
    assert geo.capacity_m2[built].sum() > 0.5 * geo.capacity_m2[inside].sum()  # 9% of the cells, most of the floor space
    area = stack.districts["area_km2"].to_numpy()
    density = geo.gdp / area
    expected = model.params.industry_far * geo.cell_m**2 * density / density.max() * np.bincount(geo.district[inside])
    total = np.bincount(geo.district[inside], geo.capacity_m2[inside])
    assert np.all(total > 0)
    np.testing.assert_allclose(total, expected, rtol=0.25)  # platforms add floor space on top of the land's


def test_metro_access_enters_firm_and_home_choice(stack):
    near = VisionValleyModel(seed=5, stack=stack, scale=0.002, anchors=0, metro_weight_home=5.0)
    none = VisionValleyModel(seed=5, stack=stack, scale=0.002, anchors=0, metro_weight_home=0.0)
    work = np.full(20_000, -1)
    distance = stack.metro_distance_m.ravel()
    sampler = WeightedSampler(np.flatnonzero(near.geo.housing > 0), near.geo.housing[near.geo.housing > 0])
    homes = [distance[choose_homes(work, m.state, m.geo, m.params, sampler, np.random.default_rng(0))].mean() for m in (near, none)]
    assert homes[0] < 0.8 * homes[1], homes
    assert near.geo.metro_access.max() == pytest.approx(1.0, abs=0.2) and near.geo.metro_access.min() >= 0


BOX = (120.17, 30.17, 120.21, 30.20)  # part of 滨江's built core, lon/lat


def test_a_planners_land_layer_moves_the_firms(tmp_path, stack):
    """A land layer that makes only one box developable puts every firm there (uncovered land weighs 0)."""
    path = tmp_path / "landuse.gpkg"
    gpd.GeoDataFrame({"weight": [1.0]}, geometry=[shapely.box(*BOX)], crs=4326).to_crs(METRIC_CRS).to_file(path)
    user = layers.load(land=path)
    shares = []
    for layer in (stack, user):
        model = VisionValleyModel(seed=2, stack=layer, scale=0.004, anchors=0)
        firms = model.state.firms
        points = gpd.GeoSeries(gpd.points_from_xy(*layer.grid.centre_of(firms.cell[firms.alive])), crs=layer.grid.crs).to_crs(4326)
        inside = points.within(shapely.box(*BOX).buffer(0.01))  # a cell on the box's edge holds part of its land
        shares.append(float(inside.mean()))
    assert shares[0] < 0.1 and shares[1] == 1.0, shares


def _tif(path: Path, value: float, crs: str | None) -> Path:
    profile = {"driver": "GTiff", "width": 20, "height": 20, "count": 1, "dtype": "float32", "transform": Affine(0.01, 0, 120.0, 0, -0.01, 30.3)}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((20, 20), value, np.float32), 1)
    return path


@pytest.mark.parametrize(("crs", "value", "pattern"), [(None, 0.5, "crs"), ("EPSG:4326", 3.0, "out of range|\\[0, 1\\]")])
def test_a_bad_land_file_stops_the_cli_with_one_line(tmp_path, crs, value, pattern):
    import re

    _tif(tmp_path / "land.tif", value, crs)
    (tmp_path / "scen.yaml").write_text("name: x\nlayers: {land: land.tif}\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "run_scenario.py", str(tmp_path / "scen.yaml"), "--out", str(tmp_path / "out"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "land.tif" in lines[0], out.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()
