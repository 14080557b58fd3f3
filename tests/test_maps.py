"""The map page, in a real headless Chromium with the network blocked: it renders, reacts, stays offline and safe.

Every browser test opens the page through :class:`Visit`, which aborts any
request that is not file:/data:/blob:/about: and records console errors, page
errors, aborted requests and dialogs; each test ends by asserting there were none.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

import layers
from layers import GIS_DATA
from twin import cli
from twin.outputs import maps
from twin.outputs.maps import payload
from twin.policy import scenario
from twin.simulation.run import RunResult, simulate

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<img src=x onerror=alert(1)>"
VIEWPORT = {"width": 1600, "height": 900}
MAP_CLIP = {"x": 320, "y": 200, "width": 960, "height": 600}
"""The part of the window between the panels, where only the map is drawn."""


def _small(stack: layers.LayerStack, seed: int, **update) -> RunResult:
    """A 1% baseline over 2023-2025: every layer present, a run in about a second."""
    spec = scenario.load(ROOT / "scenarios" / "baseline.yaml")
    spec = spec.model_copy(update={"params": {"scale": 0.01}, "years": scenario.Years(start=2023, end=2025), **update})
    return simulate(spec, seed=seed, stack=stack)


@pytest.fixture(scope="module")
def result(stack) -> RunResult:
    return _small(stack, seed=1)


@pytest.fixture(scope="module")
def other(stack) -> RunResult:
    return _small(stack, seed=2, name="control", title=scenario.Title(zh="对照情景", en="Control run"))


@pytest.fixture(scope="module")
def single_map(tmp_path_factory, result) -> Path:
    path = tmp_path_factory.mktemp("single") / "map.html"
    maps.write_map(path, result)
    return path


@pytest.fixture(scope="module")
def compare_map(tmp_path_factory, result, other) -> Path:
    path = tmp_path_factory.mktemp("compare") / "map.html"
    maps.write_map(path, result, other)
    return path


@pytest.fixture(scope="module")
def hostile_map(tmp_path_factory, stack) -> Path:
    """The map of a run whose user anchors file names 海康威视 with markup (it is the largest firm, so it is listed)."""
    folder = tmp_path_factory.mktemp("hostile")
    anchors = gpd.read_file(GIS_DATA / "anchors.geojson")
    anchors.loc[anchors["id"] == "hikvision_hq", ["name_zh", "name_en"]] = HOSTILE
    anchors.to_file(folder / "anchors.geojson", driver="GeoJSON")
    hostile = _small(layers.load(anchors=folder / "anchors.geojson"), seed=1)
    assert HOSTILE in set(hostile.years[-1].top_firms["name_zh"])
    maps.write_map(folder / "map.html", hostile)
    return folder / "map.html"


class Visit:
    """A map page opened with the network blocked, and a record of everything it did wrong."""

    def __init__(self, browser, path: Path, viewport: dict | None = None, fragment: str = ""):
        self.errors: list[str] = []
        self.aborted: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport=viewport or VIEWPORT)
        self.page.route("**/*", self._route)
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.as_uri() + fragment)
        maps.wait_until_drawn(self.page, 120_000)

    def _route(self, route) -> None:
        if route.request.url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.aborted.append(route.request.url)
            route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()

    def frame(self) -> bytes:
        """A screenshot of the map area after a fresh frame."""
        self.page.evaluate("() => window.vvMap.nextFrame()")
        return self.page.screenshot(clip=MAP_CLIP)

    def close_clean(self) -> None:
        """Close the page, asserting it logged no error, asked for no network and opened no dialog."""
        self.page.close()
        assert self.errors == []
        assert self.aborted == []
        assert self.dialogs == []


@pytest.fixture(scope="module")
def single_visit(browser, single_map):
    """One open page of the single-run map, shared by the tests that only drive its controls."""
    visit = Visit(browser, single_map)
    initial = visit.page.evaluate("() => JSON.parse(JSON.stringify(window.vvMap.state))")
    yield visit, initial
    visit.close_clean()


@pytest.fixture
def single_page(single_visit):
    """The shared page, back in its opening state (first language, last year, default layers), and clean."""
    visit, initial = single_visit
    visit.page.evaluate(
        """initial => {
            const map = window.vvMap;
            if (map.state.timer) document.getElementById('play').click();
            map.setLang(initial.lang);
            Object.entries(initial.visible).forEach(([key, on]) => map.toggle(key, on));
            map.setYear(map.years[initial.year]);
        }""",
        initial,
    )
    yield visit
    assert (visit.errors, visit.aborted, visit.dialogs) == ([], [], [])


def _colours(browser, png: bytes) -> int:
    """Distinct colours in a sample of a PNG's pixels, decoded by the browser (no imaging library needed)."""
    page = browser.new_page()
    try:
        return page.evaluate(
            """async src => {
                const img = new Image();
                img.src = src;
                await img.decode();
                const canvas = document.createElement('canvas');
                canvas.width = img.width;
                canvas.height = img.height;
                const ctx = canvas.getContext('2d');
                ctx.drawImage(img, 0, 0);
                const d = ctx.getImageData(0, 0, img.width, img.height).data;
                const seen = new Set();
                for (let i = 0; i < d.length; i += 4 * 37) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                return seen.size;
            }""",
            "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
        )
    finally:
        page.close()


class _Parts(HTMLParser):
    """Script bodies and every tag attribute of a page."""

    def __init__(self):
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.attributes += [(tag, k, v) for k, v in attrs]
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data):
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._open = None


def _fig(value: float) -> str:
    """A count as the page shows it (zh-CN and en-US group digits the same way)."""
    return f"{round(value):,}"


# --- the file ---------------------------------------------------------------------


def test_map_html_loads_nothing_from_the_network_and_is_deterministic(result, single_map, tmp_path):
    again = tmp_path / "map.html"
    maps.write_map(again, result)
    html = single_map.read_text(encoding="utf-8")
    assert again.read_bytes() == single_map.read_bytes()

    parts = _Parts()
    parts.feed(html)
    (data_attrs, data), (_, bundle), _ = parts.scripts
    assert data_attrs == {"type": "application/json", "id": "vv-data"}
    assert json.loads(data)["years"] == [2023, 2024, 2025]
    # No element refers to anything outside the file; no stylesheet imports.
    assert [(tag, key) for tag, key, _ in parts.attributes if key in ("src", "href", "srcset", "action", "poster")] == []
    assert "@import" not in html
    # Outside the vendored deck.gl bundle (which names URLs in code paths the page never runs), no URL at all;
    # the browser tests check that nothing is fetched at run time either.
    ours = html.replace(bundle, "")
    assert "http://" not in ours and "https://" not in ours and "url(" not in ours
    csp = next(v for tag, k, v in parts.attributes if tag == "meta" and k == "content" and "default-src" in (v or ""))
    assert "default-src 'none'" in csp and "unsafe" not in csp
    assert not list(single_map.parent.glob(".*.tmp-*")), "the temporary file is renamed into place"


def test_the_density_cells_add_up_to_the_run(result):
    data = payload.build(result)
    cell_km2 = (data["cells"]["size_m"] / 1000) ** 2
    for snap, revenue, talent in zip(result.years, data["revenue"]["values"], data["talent"]["values"]):
        assert sum(revenue) * cell_km2 * payload.WAN == pytest.approx(float(snap.revenue.sum()), rel=1e-3)
        assert sum(talent) * cell_km2 == pytest.approx(float(snap.talent.sum()))
    assert [len(f) for f in data["firms"]] == [len(s.top_firms) for s in result.years]



def _metric(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 points in the grid's metric CRS, by geopandas (not the payload's own reprojection)."""
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(layers.METRIC_CRS)
    return points.x.to_numpy(), points.y.to_numpy()


def test_the_density_cells_lie_in_hangzhou_where_the_firms_they_summarise_are(result):
    """Every map cell's centre is inside the real district boundary (within half a cell's diagonal), and every firm of the
    last year lies in the 1 km cell around a cell centre that shows revenue: cells are where their firms are."""
    data = payload._density_layers(result, [snap.year for snap in result.years], round(payload.CELL_M / result.grid.cell_m))
    cells, half = data["cells"], data["cells"]["size_m"] / 2
    x, y = _metric(cells["lon"], cells["lat"])
    city = gpd.read_file(GIS_DATA / "districts.geojson").to_crs(layers.METRIC_CRS).union_all().buffer(half * 1.5)
    assert gpd.GeoSeries(gpd.points_from_xy(x, y), crs=layers.METRIC_CRS).within(city).all()
    firms = result.years[-1].firms
    fx, fy = _metric(firms.geometry.x, firms.geometry.y)
    shows = np.asarray(data["revenue"]["values"][-1]) > 0
    inside = (np.abs(x[None, :] - fx[:, None]) <= half + 1) & (np.abs(y[None, :] - fy[:, None]) <= half + 1)  # firms x cells
    assert (inside.sum(axis=1) == 1).all() and shows[inside.argmax(axis=1)].all()


def test_a_firm_at_a_known_place_lands_in_the_map_cell_at_that_place(result):
    """Revenue put on the 250 m cell of 海康威视's headquarters (anchors layer) shows on exactly one 1 km map cell, whose
    centre is within 0.71 km (half its diagonal) of the headquarters, at Hangzhou's longitude and latitude."""
    anchors = gpd.read_file(GIS_DATA / "anchors.geojson").set_index("id")
    hq = anchors.loc["hikvision_hq", "geometry"]
    hx, hy = _metric([hq.x], [hq.y])
    grid = result.grid
    col, row = ~grid.transform @ (hx[0], hy[0])
    revenue = np.zeros(grid.shape)
    revenue[int(row), int(col)] = 1e10

    class Year:
        def __init__(self) -> None:
            self.revenue, self.talent = revenue, np.zeros(grid.shape)

    class Run:
        def __init__(self) -> None:
            self.grid = grid

        def year(self, year: int) -> Year:
            return Year()

    factor = round(payload.CELL_M / grid.cell_m)
    layer = payload._density_layers(Run(), [2024], factor)
    cells = layer["cells"]
    assert len(cells["lon"]) == 1 and layer["revenue"]["values"][0][0] > 0
    assert 119.5 < cells["lon"][0] < 121 and 29.5 < cells["lat"][0] < 30.8  # Hangzhou: longitude about 120, latitude about 30
    x, y = _metric(cells["lon"], cells["lat"])
    assert np.hypot(x[0] - hx[0], y[0] - hy[0]) <= cells["size_m"] / np.sqrt(2)


def test_write_png_says_clearly_when_chromium_is_missing(single_map, tmp_path, monkeypatch):
    monkeypatch.setattr(maps, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(RuntimeError, match="Chromium not found"):
        maps.write_png(single_map, tmp_path / "map.png")
    assert not (tmp_path / "map.png").exists()


def test_embedded_json_cannot_leave_its_script_element():
    tricky = {"name": "</script><script>alert(1)</script><!-- & \u2028\u2029"}
    text = maps.embed_json(tricky)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == tricky


def test_a_hostile_name_is_data_not_markup(hostile_map):
    assert HOSTILE not in hostile_map.read_text(encoding="utf-8")


# --- in the browser -----------------------------------------------------------------


def test_the_page_renders_a_map_without_errors(browser, single_page):
    visit = single_page
    assert visit.page.locator("#map canvas").count() == 1
    assert _colours(browser, visit.frame()) > 20, "the map area is not blank"
    assert "2025" in visit.text("#year")


def test_the_slider_changes_the_year_and_the_key_figures(single_page, result):
    visit = single_page
    firms = visit.page.locator("#figures [data-key=firms] .figure-value")
    assert firms.inner_text() == _fig(result.years[-1].figures["firms"])
    before = visit.text("#figures")
    visit.page.locator("#year-slider").fill("0")
    assert "2023" in visit.text("#year")
    assert firms.inner_text() == _fig(result.years[0].figures["firms"])
    assert visit.text("#figures") != before
    visit.page.locator("#year-slider").press("ArrowRight")
    assert "2024" in visit.text("#year")


def test_play_steps_through_the_years_and_pause_stops(single_page):
    visit = single_page
    visit.page.locator("#play").click()
    visit.page.locator("#year", has_text="2023").wait_for(timeout=10_000)
    visit.page.locator("#play").click()
    assert visit.page.evaluate("window.vvMap.state.timer") is None


def test_a_toggle_hides_its_layer_and_its_legend(single_page):
    visit = single_page
    shown = visit.frame()
    assert visit.page.evaluate("window.vvMap.layerVisible('revenue')")
    assert "企业营收密度" in visit.text("#legend")
    visit.page.locator("input[data-layer=revenue]").uncheck()
    assert not visit.page.evaluate("window.vvMap.layerVisible('revenue')")
    assert "企业营收密度" not in visit.text("#legend")
    assert visit.frame() != shown


def test_the_language_switch_changes_every_label(single_page, result):
    visit = single_page
    assert visit.text("#title").startswith("中国视谷数字孪生")
    assert result.scenario.title.zh in visit.text("#title")
    assert "营收前十企业" in visit.text("#side")
    visit.page.locator("#lang").click()
    assert visit.text("#title").startswith("China Vision Valley twin")
    assert result.scenario.title.en in visit.text("#title")
    assert "Firm revenue density" in visit.text("#legend") and "企业营收密度" not in visit.text("#legend")
    assert "Ten largest firms" in visit.text("#side") and "Hikvision" in visit.text("#firms")
    assert visit.page.evaluate("document.documentElement.lang") == "en"
    visit.page.locator("#lang").click()
    assert visit.text("#title").startswith("中国视谷数字孪生")


def test_a_hostile_name_shows_as_text_and_runs_nothing(browser, hostile_map):
    visit = Visit(browser, hostile_map)
    for lang in ("zh", "en"):
        visit.page.evaluate("lang => window.vvMap.setLang(lang)", lang)
        assert visit.page.locator("#firms li:first-child .firm-name").inner_text() == HOSTILE
    # Its dot's tooltip (the largest firm is the first row of the last year) shows the name as text too.
    x, y = visit.page.evaluate(
        """() => {
            const data = JSON.parse(document.getElementById('vv-data').textContent);
            const top = data.firms[data.firms.length - 1][0];
            return window.vvMap.project([top[0], top[1]]);
        }"""
    )
    visit.page.mouse.move(x, y)
    tooltip = visit.page.locator(".deck-tooltip")
    tooltip.wait_for(state="visible", timeout=10_000)
    assert tooltip.inner_text().splitlines()[0] == HOSTILE
    assert visit.page.locator("img").count() == 0
    visit.close_clean()


def test_the_comparison_map_shows_both_runs(browser, compare_map, result, other):
    visit = Visit(browser, compare_map)
    assert _colours(browser, visit.frame()) > 20
    title = visit.text("#title")
    assert result.scenario.title.zh in title and "对照情景" in title
    header = visit.text("#figures table tr:first-child")
    assert result.scenario.title.zh in header and "对照情景" in header
    cells = visit.page.locator("#figures tr[data-key=firms] td").all_inner_texts()
    ours, theirs = result.years[-1].figures["firms"], other.years[-1].figures["firms"]
    assert cells[:3] == [_fig(ours), _fig(theirs), ("+" if ours > theirs else "") + _fig(ours - theirs)]
    assert visit.page.evaluate("window.vvMap.layerVisible('difference')")
    assert "营收密度差值" in visit.text("#legend")
    visit.page.locator("#lang").click()
    assert "Control run" in visit.text("#figures")
    visit.close_clean()


def test_write_pngs_saves_one_non_blank_snapshot_per_language(browser, single_map, tmp_path):
    assert maps.write_pngs(single_map, tmp_path) == [tmp_path / "map_zh.png", tmp_path / "map_en.png"]
    zh, en = (tmp_path / "map_zh.png").read_bytes(), (tmp_path / "map_en.png").read_bytes()
    for data in (zh, en):
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert _colours(browser, data) > 20
    assert zh != en, "the two languages differ in their labels"
    maps.write_png(single_map, tmp_path / "first.png", year=2023, lang="zh")
    assert (tmp_path / "first.png").read_bytes() != zh
    with pytest.raises(ValueError, match="year 1999"):
        maps.write_png(single_map, tmp_path / "none.png", year=1999)


# --- the ensemble's probability map ----------------------------------------------------------


def _probability(*runs: RunResult) -> dict[str, np.ndarray]:
    """The share of ``runs`` whose revenue per cell exceeds the base year's: a real (if tiny) ensemble's P(growth) grids."""
    return {str(snap.year): np.mean([r.year(snap.year).revenue > r.years[0].revenue for r in runs], axis=0).astype(np.float32)
            for snap in runs[0].years}


CHANCES = {
    "year": 2025,
    "targets": {
        "total_scale_cny": {"probability": 0.5, "probability_ci90": [0.1, 0.9]},
        "revenue_cny": {"probability": 0.25, "probability_ci90": [0.05, 0.6]},
        "leaders_100bn": {"probability": 0.0, "probability_ci90": [0.0, 0.4]},
        "all": {"probability": 0.0, "probability_ci90": [0.0, 0.4]},
    },
}
"""One point of targets.json, as the ensemble writes it (only the fields the map reads)."""


@pytest.fixture(scope="module")
def probability_map(tmp_path_factory, stack, result, other) -> Path:
    path = tmp_path_factory.mktemp("probability") / "map.html"
    maps.write_probability_map(path, _probability(result, other), stack, result.scenario, members=2, seed=11, targets=CHANCES)
    return path


def test_the_probability_layer_is_the_mean_over_1_km_cells_and_deterministic(probability_map, stack, result, other, tmp_path):
    probability = _probability(result, other)
    data = payload.build_probability(probability, stack, result.scenario, 2, 11, {"points": [CHANCES]})
    assert data["mode"] == "probability" and data["years"] == [2023, 2024, 2025]
    assert data["ensemble"] == {"members": 2, "seed": 11, "scale": 0.01}
    assert data["chances"]["year"] == 2025 and data["chances"]["targets"]["revenue_cny"] == {"probability": 0.25, "ci90": [0.05, 0.6]}
    assert data["probability"]["breaks"] == payload.PROBABILITY_BREAKS
    factor = round(payload.CELL_M / stack.grid.cell_m)
    for year, values in zip(data["years"], data["probability"]["values"]):
        grid = probability[str(year)]
        assert all(0 <= v <= payload.PERMILLE for v in values)
        # Summed back over the blocks' cells, the per-mille means give the grid's total (interior blocks hold factor² cells).
        assert sum(values) * factor**2 / payload.PERMILLE == pytest.approx(float(grid.sum()), rel=0.02)
        assert sum(v > 0 for v in values) == int(np.count_nonzero(payload._coarse(grid, factor)))
    assert not any(data["probability"]["values"][0]) and any(data["probability"]["values"][-1])

    again = tmp_path / "map.html"
    maps.write_probability_map(again, probability, stack, result.scenario, members=2, seed=11, targets=CHANCES)
    assert again.read_bytes() == probability_map.read_bytes()
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_the_probability_map_renders_and_switches_year_and_language(browser, probability_map):
    visit = Visit(browser, probability_map)
    assert _colours(browser, visit.frame()) > 20, "the map area is not blank"
    assert visit.page.evaluate("window.vvMap.layerVisible('probability')")
    assert not visit.page.evaluate("window.vvMap.layerVisible('revenue')")
    assert "2025" in visit.text("#year")
    assert visit.text("#figures [data-key=members] .figure-value") == "2"
    assert visit.text("#figures [data-key=seed] .figure-value") == "11"
    assert visit.text("#figures [data-key=revenue_cny] .figure-value") == "25 %"
    assert visit.text("#firms") == ""

    shown = visit.frame()
    visit.page.locator("#year-slider").fill("0")
    assert "2023" in visit.text("#year")
    assert visit.frame() != shown

    assert "营收增长概率" in visit.text("#legend")
    assert "≥ 90 %" in visit.text("#legend")
    visit.page.locator("#lang").click()
    assert "Probability of revenue growth" in visit.text("#legend") and "营收增长概率" not in visit.text("#legend")
    assert "Probability of meeting the 2027 targets" in visit.text("#side")
    visit.page.locator("input[data-layer=probability]").uncheck()
    assert not visit.page.evaluate("window.vvMap.layerVisible('probability')")
    visit.close_clean()


# --- the base map, the layout and the languages (issues 11 and 16) -----------------------------------


def _embedded(path: Path) -> dict:
    """The payload a written page carries."""
    html = path.read_text(encoding="utf-8")
    return json.loads(html.split('<script type="application/json" id="vv-data">', 1)[1].split("</script>", 1)[0])


def test_the_payload_carries_water_metro_built_up_land_and_credits(result, stack):
    base = payload.build(result)["basemap"]
    assert len(base["metro"]) == len(stack.metro) and len(base["urban"]) == len(stack.urban)
    for feature in base["metro"]:
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", feature["properties"]["colour"]) and feature["properties"]["ref"]
        assert feature["geometry"]["type"] in ("LineString", "MultiLineString")
    names = [f["properties"]["name_zh"] for f in base["water"]]
    assert "西湖" in names and any("钱塘江" in n for n in names)
    # Rounded to 4 decimals: the geometry is embedded compactly.
    lon = json.dumps(base["metro"][0]["geometry"]["coordinates"])
    assert not re.search(r"\.\d{5,}", lon)
    credits = " ".join(payload.build(result)["credits"])
    assert "© OpenStreetMap contributors (ODbL)" in credits and "Natural Earth" in credits and "GSHHG" in credits and "cnmaps" in credits


def test_the_default_language_is_checked_and_embedded(result, tmp_path):
    maps.write_map(tmp_path / "map.html", result, lang="en")
    assert _embedded(tmp_path / "map.html")["lang"] == "en"
    with pytest.raises(ValueError, match="unknown map language 'fr'"):
        maps.write_map(tmp_path / "fr.html", result, lang="fr")


def test_the_cli_lang_flag_sets_the_maps_language(tmp_path):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(f"extends: {ROOT / 'scenarios' / 'baseline.yaml'}\nname: tiny\nparams: {{scale: 0.01}}\nyears: {{start: 2023, end: 2024}}\n")
    assert cli.main([str(tiny), "--lang", "en", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert _embedded(tmp_path / "out" / "map.html")["lang"] == "en"
    assert not list((tmp_path / "out").glob("*.png")), "no PNG without --png"


def test_the_base_map_is_drawn_and_credited(single_page, result):
    visit = single_page
    data = _embedded_page(visit)
    for layer in ("water", "urban", "metro"):
        assert visit.page.evaluate("id => window.vvMap.layerVisible(id)", layer)
    assert visit.page.evaluate("window.vvMap.layerSize('metro')") == len(data["basemap"]["metro"])
    credits = visit.page.locator("#credits")
    assert credits.is_visible() and "© OpenStreetMap contributors (ODbL)" in credits.inner_text()
    # Only cells at or above the floor stand as columns: no carpet of tiny firms over farmland.
    last = data["revenue"]["values"][-1]
    assert visit.page.evaluate("window.vvMap.layerSize('revenue')") == sum(v >= data["revenue"]["floor"] for v in last) < sum(v > 0 for v in last)
    # The base map toggle hides all three layers.
    visit.page.locator("input[data-layer=basemap]").uncheck()
    assert not any(visit.page.evaluate("id => window.vvMap.layerVisible(id)", layer) for layer in ("water", "urban", "metro"))


def _embedded_page(visit: Visit) -> dict:
    return visit.page.evaluate("() => JSON.parse(document.getElementById('vv-data').textContent)")


def _rect(visit: Visit, selector: str) -> dict:
    return visit.page.evaluate("s => { const r = document.querySelector(s).getBoundingClientRect(); return {x: r.left, y: r.top, r: r.right, b: r.bottom}; }", selector)


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["r"] and b["x"] < a["r"] and a["y"] < b["b"] and b["y"] < a["b"]


LAYOUTS = [
    ("single_map", {"width": 1366, "height": 768}, "en"),
    ("compare_map", {"width": 1366, "height": 768}, "zh"),
    ("single_map", {"width": 1920, "height": 1080}, "zh"),
]


@pytest.mark.parametrize(("which", "viewport", "lang"), LAYOUTS, ids=["single-1366-en", "compare-1366-zh", "single-1920-zh"])
def test_the_layout_fits_the_window_and_the_address_picks_the_language(browser, request, result, which, viewport, lang):
    visit = Visit(browser, request.getfixturevalue(which), viewport=viewport, fragment=f"#lang={lang}")
    assert visit.page.evaluate("window.vvMap.state.lang") == lang
    assert visit.text("#title").startswith("中国视谷数字孪生" if lang == "zh" else "China Vision Valley twin")
    # Human titles only: no scenario id, no seed in the header.
    assert visit.text("#subtitle") == "2023–2025"
    # Every panel, the legend's last entry and the title lie inside the window, and no two panels overlap.
    panels = {s: _rect(visit, s) for s in ("#top", "#side", "#layers-panel", "#credits")}
    inside = [*panels.values(), _rect(visit, "#legend .legend-block:last-child .legend-row:last-child"), _rect(visit, "#title")]
    for box in inside:
        assert 0 <= box["x"] and box["r"] <= viewport["width"] and 0 <= box["y"] and box["b"] <= viewport["height"], box
    names = list(panels)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not _overlap(panels[a], panels[b]), (a, b, panels[a], panels[b])
    assert visit.page.locator("#credits").is_visible()
    if which == "single_map":
        # The ten largest firms by name: a synthetic one as a model firm of its district, never as unnamed or pooled.
        firms = visit.text("#firms")
        assert "未具名" not in firms and "Unnamed" not in firms and "Other firms" not in firms and "其他企业" not in firms
        unnamed = sum(1 for r in _embedded_page(visit)["firms"][-1][:10] if not (r[2] or r[3]))
        if unnamed:
            assert ("模拟企业" if lang == "zh" else "Model firm, ") in firms
        # Column heights follow the view: never taller than a fifth of the window, zoomed out or in.
        heights = [visit.page.evaluate("z => window.vvMap.setView(120.2, 30.2, z).then(() => window.vvMap.tallestColumnPixels())", z) for z in (9, 13)]
        assert all(0 < h <= 0.2 * viewport["height"] + 0.5 for h in heights), heights
    visit.close_clean()
