"""What a presenter and a planner read: comparison maps that show the summary's figures, presentation mode and
its labels, slides without controls, one PNG per year and an animation, and a clear pre-flight error for --png.

Browser tests run Debian's headless Chromium through Playwright with the network blocked, as tests/test_maps.py does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from twin import cli
from twin.outputs import maps, writer
from twin.outputs.maps import names, payload
from twin.outputs.writer import write_comparison
from twin.policy import scenario
from twin.simulation.run import RunResult, simulate
from twin.studies.compare import pair_seeds, run_pairs

ROOT = Path(__file__).resolve().parents[1]
YEARS = scenario.Years(start=2023, end=2024)


def _tiny(name: str = "baseline", scale: float = 0.005) -> scenario.Scenario:
    """A shipped scenario at ``scale`` over 2023-2024: two years on the map, a run in seconds."""
    return scenario.load(ROOT / "scenarios" / f"{name}.yaml").model_copy(update={"params": {"scale": scale}, "years": YEARS})


def _tiny_file(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(f"extends: {ROOT / 'scenarios' / 'baseline.yaml'}\nname: tiny\nparams: {{scale: 0.003}}\nyears: {{start: 2023, end: 2024}}\n")
    return path


class Page:
    """A map page opened with the network blocked; ``close_clean`` asserts it logged no error and fetched nothing."""

    def __init__(self, browser, path: Path, fragment: str = "", viewport: tuple[int, int] = (1600, 900)):
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.page.route("**/*", self._route)
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(path.as_uri() + fragment)
        maps.wait_until_drawn(self.page, 120_000)

    def _route(self, route) -> None:
        if route.request.url.startswith(maps.LOCAL_SCHEMES):
            route.continue_()
        else:
            self.errors.append(f"fetched {route.request.url}")
            route.abort()

    def rect(self, selector: str) -> list[float]:
        return self.page.evaluate("s => { const r = document.querySelector(s).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }", selector)

    def close_clean(self) -> None:
        self.page.close()
        assert self.errors == []


@pytest.fixture(scope="module")
def run(stack) -> RunResult:
    return simulate(_tiny(), seed=1, stack=stack)


@pytest.fixture(scope="module")
def single_map(tmp_path_factory, run) -> Path:
    path = tmp_path_factory.mktemp("present") / "map.html"
    maps.write_map(path, run, lang="en")
    return path


# --- an ensemble comparison's map gives the figures of comparison.csv (issue 25, item 1) -----------------------


@pytest.fixture(scope="module")
def ensemble_comparison(tmp_path_factory):
    """Two scenarios on two paired member seeds, written as ``--compare --ensemble 2`` writes them."""
    result = run_pairs(_tiny("baseline"), _tiny("vouchers_250m"), pair_seeds(1, 2))
    folder = tmp_path_factory.mktemp("ensemble_comparison")
    write_comparison(result.a, result.b, result.table, folder, lang="en")
    return result, folder


def test_the_ensemble_comparison_map_shows_the_means_and_intervals_of_comparison_csv(browser, ensemble_comparison):
    result, folder = ensemble_comparison
    csv = pd.read_csv(folder / "comparison.csv", keep_default_na=False)
    city = csv[(csv["level"] == "city") & (csv["year"] == 2024)].set_index("metric")
    member = {side: runs[0].year(2024).figures for side, runs in (("a", result.a), ("b", result.b))}
    page = Page(browser, folder / "map.html")
    assert page.page.locator("#figures .pairs-note").inner_text() == "means of 2 paired seeds; difference with its 90% interval"
    # Counts as the page formats them (its own rounding and grouping), so only the numbers are under test.
    # The payload carries six significant digits (a mean of two members may end in .5, which that rounding settles first).
    shown = lambda v, sign="": page.page.evaluate("([v, sign]) => (sign && v > 0 ? '+' : '') + Math.round(v).toLocaleString('en-US')",
                                                  [float(f"{float(v):.6g}"), sign])
    for key in ("firms", "talent"):
        row = city.loc[key]
        cells = page.page.locator(f"#figures tr[data-key={key}] td").all_inner_texts()
        # The map's columns are B (the compared scenario), A, then B - A with its interval: the CSV's means.
        assert cells[:2] == [shown(row["mean_b"]), shown(row["mean_a"])], (key, cells)
        assert cells[:2] != [shown(member["b"][key]), shown(member["a"][key])], "one member's figures, not the mean"
        assert cells[2].split("\n") == [shown(row["difference"], "+"), f"[{shown(row['ci90_low'], '+')}, {shown(row['ci90_high'], '+')}]"]
    # The money figures, which the page rounds to four digits, are embedded as the CSV gives them to six significant digits.
    data = page.page.evaluate("() => JSON.parse(document.getElementById('vv-data').textContent)")
    revenue = city.loc["revenue_cny"]
    assert data["figures"][0][-1]["revenue_cny"] == pytest.approx(revenue["mean_b"], rel=5e-6)
    assert data["paired"]["difference"][-1]["revenue_cny"] == pytest.approx([revenue["difference"], revenue["ci90_low"], revenue["ci90_high"]], rel=1e-5)
    page.close_clean()


def test_a_single_seed_comparison_says_it_is_one_seed(run, stack):
    other = simulate(_tiny("vouchers_250m"), seed=1, stack=stack)
    paired = payload.build(other, run)["paired"]
    assert paired["pairs"] == 1 and paired["seeds"] == [1]
    firms = paired["difference"][-1]["firms"]
    assert firms == [other.years[-1].figures["firms"] - run.years[-1].figures["firms"], None, None]


# --- the firm list (item 9) -------------------------------------------------------------------------------


@pytest.mark.parametrize(("site", "firm"), [("先临三维(义桥地块)", "先临三维"), ("Shining 3D (Yiqiao land parcel)", "Shining 3D"),
                                            ("Hikvision HQ", "Hikvision"), ("Dahua Technology HQ", "Dahua Technology"),
                                            ("海康威视总部", "海康威视"), ("网易（杭州）", "网易"), ("HQ", "HQ"), ("ArcSoft", "ArcSoft")])
def test_a_firm_is_named_without_its_sites_suffix(site, firm):
    assert names.firm_name(site) == firm


def test_the_firm_list_names_the_ten_largest_firms(browser, single_map, run):
    page = Page(browser, single_map)
    names = page.page.locator("#firms .firm-name").all_inner_texts()
    top = run.years[-1].top_firms.head(10)
    assert len(names) == 10
    assert names[0] == "Hikvision" and "Shining 3D" in names
    assert not any("(" in n or "HQ" in n or "Other firm" in n for n in names), names
    synthetic = int((top["name_en"] == "").sum())
    assert sum(n.startswith("Model firm, ") for n in names) == synthetic > 0
    assert "not a real company" in page.page.locator("#firms-note").inner_text()
    page.close_clean()


# --- presentation mode (item 5) -----------------------------------------------------------------------------

MUST_LABEL = ("Xiaoshan", "Binjiang", "West Lake", "Qiantang River", "Future Sci-Tech City", "Shangcheng", "Xihu")


@pytest.mark.parametrize("viewport", [(1280, 720), (1366, 768)], ids=["1280x720", "1366x768"])
def test_presentation_mode_labels_the_landmarks_in_view_and_off_the_panels(browser, single_map, viewport):
    page = Page(browser, single_map, "#lang=en&present", viewport)
    assert page.page.evaluate("window.vvMap.state.present")
    panels = [page.rect(s) for s in ("#top", "#side", "#layers-panel", "#credits")]
    shown = {label["text"]: label for label in page.page.evaluate("window.vvMap.labelsOnScreen()")}
    for name in MUST_LABEL:
        assert name in shown, f"{name} is not labelled at the opening view ({sorted(shown)})"
        x, y = shown[name]["x"], shown[name]["y"]
        assert 0 < x < viewport[0] and 0 < y < viewport[1], (name, x, y)
        assert not any(left <= x <= right and top <= y <= bottom for left, top, right, bottom in panels), (name, x, y, panels)
    # The panels leave the middle of the window to the map: together they are under half its width.
    side, layers = page.rect("#side"), page.rect("#layers-panel")
    assert (side[2] - side[0]) + (layers[2] - layers[0]) < 0.45 * viewport[0]
    page.close_clean()


def test_panels_collapse_and_presentation_mode_can_be_left(browser, single_map):
    page = Page(browser, single_map, "#lang=en&present", (1366, 768))
    assert page.page.locator("#figures").is_visible()
    page.page.locator("#side > .collapse").click()
    assert not page.page.locator("#figures").is_visible() and page.page.locator("#figures-title").is_visible()
    page.page.locator("#side > .collapse").click()
    assert page.page.locator("#figures").is_visible()
    assert not page.page.locator("#toggles").is_visible(), "presentation mode shows the legend, not the check boxes"
    page.page.locator("#present").click()
    assert not page.page.evaluate("window.vvMap.state.present") and page.page.locator("#toggles").is_visible()
    page.close_clean()


def test_a_slide_has_no_controls(browser, single_map):
    page = Page(browser, single_map, "#lang=en&slide")
    for control in ("#play", "#year-slider", "#lang", "#present", "#side > .collapse", "#toggles"):
        assert not page.page.locator(control).is_visible(), control
    assert page.page.locator("#year").inner_text() == "Year 2024"
    assert page.page.locator("#legend").is_visible()
    page.close_clean()


# --- --frames and the --png pre-flight (items 4 and 5) --------------------------------------------------------


def test_frames_writes_one_slide_per_year_and_an_animation(browser, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([str(_tiny_file(tmp_path)), "--frames", "--lang", "en", "--out", str(out)]) == 0
    log = capsys.readouterr().err.splitlines()  # not a terminal: one line per stage, the slow browser step announced
    assert "rendering one en slide per year and map_en.gif (headless Chromium)" in log[-1]
    frames = sorted((out / "frames").iterdir())
    assert [f.name for f in frames] == ["map_en_2023.png", "map_en_2024.png"]
    first, last = (Image.open(f) for f in frames)
    assert first.size == last.size == (maps.SNAPSHOT_SIZE["width"], maps.SNAPSHOT_SIZE["height"])
    assert frames[0].read_bytes() != frames[1].read_bytes(), "each frame shows its own year"
    with Image.open(out / "map_en.gif") as gif:
        assert gif.n_frames == 2 and gif.info["duration"] == 1500 and gif.info["loop"] == 0
        gif.seek(1)
        assert gif.convert("RGB").tobytes() != Image.open(io.BytesIO(frames[0].read_bytes())).convert("RGB").tobytes()
    assert not (out / "map_zh.gif").exists() and not list(out.glob("map_*.png")), "--frames alone writes no other slide"


def test_png_without_the_browser_fails_before_any_work_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(maps, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(writer, "simulate", lambda *a, **k: pytest.fail("simulated although --png cannot be rendered"))
    for flag in ("--png", "--frames"):
        assert cli.main([str(_tiny_file(tmp_path)), flag, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: arguments: {flag}: PNG export needs headless Chromium"), err
        assert "apt-get install chromium" in err
        assert not (tmp_path / "out").exists()


def test_png_without_playwright_exits_2_with_one_line_and_no_output(tmp_path):
    """A real process in which Playwright cannot be imported (a sitecustomize shim hides it)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoPlaywright:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'playwright' or name.startswith('playwright.'):\n"
        "            raise ImportError('playwright is hidden by this test')\n"
        "sys.meta_path.insert(0, _NoPlaywright())\n"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(shim), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "run_scenario.py", str(_tiny_file(tmp_path)), "--png", "--out", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: arguments: --png: PNG export needs headless Chromium")
    assert 'pip install -e ".[png]"' in done.stderr
    assert done.stdout == "" and not (tmp_path / "out").exists()
