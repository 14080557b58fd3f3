"""Attribution: Shapley values on known games, and ``--attribute`` end to end on real Dask processes with a kill and resume.

The end-to-end runs use two of trillion_push's levers on a tiny city (scale
0.005, no anchor firms, 2023-2024), so 4 subsets x 2 members take seconds.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import kill_midway

from twin.outputs import maps
from twin.policy import scenario
from twin.studies.attribution import EXACT_LEVERS, coalitions, shapley

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
COMPARED = ("attribution.csv", "attribution_map.html")
KEYS = ["year", "metric", "zone", "district", "track"]


def cli(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_scenario.py", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def game(weights: np.ndarray, pair: float) -> dict[tuple[int, ...], np.ndarray]:
    """Additive values plus a bonus when levers 0 and 1 are both on: Shapley splits the bonus evenly."""
    k = len(weights)
    return {s: np.array([weights[list(s)].sum() + (pair if {0, 1} <= set(s) else 0.0)])
            for size in range(k + 1) for s in itertools.combinations(range(k), size)}


def test_exact_shapley_splits_an_interaction_evenly_and_adds_up():
    weights = np.array([3.0, -1.0, 5.0, 0.5])
    values = game(weights, pair=2.0)
    subsets, orders = coalitions(4, seed=1)
    assert orders is None and len(subsets) == 16
    phi, se = shapley(values, 4, None)
    assert np.allclose(phi[:, 0], weights + np.array([1.0, 1.0, 0.0, 0.0]))
    assert np.isclose(phi.sum(), values[(0, 1, 2, 3)][0] - values[()][0]) and not se.any()


def test_sampled_permutations_add_up_exactly_and_state_their_error():
    k = EXACT_LEVERS + 2
    weights = np.arange(1.0, k + 1)
    subsets, orders = coalitions(k, seed=5)
    assert orders is not None and len(subsets) < 2**k
    values = game(weights, pair=4.0)
    phi, se = shapley({s: values[s] for s in subsets}, k, orders)
    assert np.isclose(phi.sum(), values[tuple(range(k))][0] - values[()][0])  # efficiency, whatever the orders
    assert np.allclose(phi[2:, 0], weights[2:])  # no interaction: every order gives the weight
    assert se[0, 0] > 0 and np.isclose(phi[0, 0] + phi[1, 0], weights[0] + weights[1] + 4.0)



def brute_force_shapley(values: dict[tuple[int, ...], np.ndarray], k: int) -> np.ndarray:
    """The Shapley value by its definition: each player's marginal contribution averaged over all k! orders of arrival."""
    phi = np.zeros((k, *next(iter(values.values())).shape))
    orders = list(itertools.permutations(range(k)))
    for order in orders:
        for j, i in enumerate(order):
            phi[i] += values[tuple(sorted(order[: j + 1]))] - values[tuple(sorted(order[:j]))]
    return phi / len(orders)


@pytest.mark.parametrize("k", [3, 4, 5])
def test_exact_shapley_is_the_average_over_every_order_on_games_with_higher_order_interactions(k):
    """Random games (every subset its own value, so interactions of three and more levers) and a unanimity game on three
    levers: the exact path against the definition. Weights that differ from Shapley's (Banzhaf's 1 / 2^(k-1)) fail here."""
    rng = np.random.default_rng(k)
    subsets = [s for size in range(k + 1) for s in itertools.combinations(range(k), size)]
    random_game = {s: rng.normal(size=2) * (len(s) > 0) for s in subsets}
    unanimity = {s: np.array([6.0 if {0, 1, 2} <= set(s) else 0.0]) for s in subsets}  # pays only when levers 0, 1 and 2 all act
    for values in (random_game, unanimity):
        phi, se = shapley(values, k, None)
        np.testing.assert_allclose(phi, brute_force_shapley(values, k), rtol=1e-12, atol=1e-12)
        assert not se.any()
    np.testing.assert_allclose(shapley(unanimity, k, None)[0][:, 0], [2.0, 2.0, 2.0] + [0.0] * (k - 3), atol=1e-12)


def test_sampled_shapley_over_every_order_is_the_exact_value():
    """The permutation path, given all k! orders once each, is the definition itself."""
    k = 4
    rng = np.random.default_rng(9)
    values = {s: rng.normal(size=1) * (len(s) > 0) for size in range(k + 1) for s in itertools.combinations(range(k), size)}
    phi, _ = shapley(values, k, [list(o) for o in itertools.permutations(range(k))])
    np.testing.assert_allclose(phi, brute_force_shapley(values, k), rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def two_levers(tmp_path_factory) -> Path:
    data = yaml.safe_load((scenario.SCENARIOS / "trillion_push.yaml").read_text(encoding="utf-8"))
    data |= {"extends": str(scenario.SCENARIOS / "trillion_push.yaml"), "name": "two_levers",
             "years": {"start": 2023, "end": 2024}, "params": {"scale": 0.005, "anchors": 0}}
    data["levers"] = [data["levers"][2], data["levers"][5]]  # the fund and talent incentives
    path = tmp_path_factory.mktemp("scenario") / "two_levers.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(two_levers, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("attribution") / "out"
    run = cli(two_levers, "--attribute", "--ensemble", 2, "--workers", 2, "--seed", 3, "--out", out)
    assert run.returncode == 0, run.stderr
    return out, run


def test_attribution_levers_add_up_to_all_by_zone_and_district(reference):
    out, run = reference
    table = pd.read_csv(out / "attribution.csv", keep_default_na=False)
    assert list(table.columns[:10]) == ["scenario", "seed", "members", "lever", "year", "metric", "zone", "district", "track", "value"]
    assert set(table["lever"]) == {"vision_fund#0", "talent#0", "all"}
    revenue = table[table["metric"] == "revenue_cny"]
    assert (revenue["zone"] != "").any() and (revenue["district"] != "").any()
    parts = revenue[revenue["lever"] != "all"].groupby(KEYS)["value"].sum()
    whole = revenue[revenue["lever"] == "all"].set_index(KEYS)["value"]
    city = (2024, "revenue_cny", "", "", "")
    assert whole[city] != 0 and abs(parts[city] - whole[city]) <= 0.01 * abs(whole[city])
    assert np.allclose(parts.reindex(whole.index), whole, rtol=1e-4, atol=1.0)
    assert "vision_fund#0" in run.stdout and "revenue per yuan" in run.stdout and "levers add up to" in run.stdout
    assert (out / "attribution.png").stat().st_size > 10_000
    page = (out / "attribution_map.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "vision_fund#0" in page and "滨江区" in page


def test_killed_attribution_resumes_to_the_same_bytes(reference, two_levers, tmp_path):
    out = tmp_path / "killed"
    kill_midway([str(two_levers), "--attribute", "--ensemble", "2",
                 "--seed", "3", "--quiet", "--out", str(out)], REPO, ENV, out / "members", "p*_m*.npz", 2)
    assert not (out / "attribution.csv").exists()
    run = cli(two_levers, "--attribute", "--ensemble", 2, "--seed", 3, "--quiet", "--resume", "--out", out)
    assert run.returncode == 0, run.stderr
    for name in COMPARED:
        assert (out / name).read_bytes() == (reference[0] / name).read_bytes(), name


def test_attribute_without_levers_is_an_input_error(two_levers, tmp_path):
    data = yaml.safe_load(two_levers.read_text(encoding="utf-8")) | {"levers": []}
    path = tmp_path / "none.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    run = cli(path, "--attribute", "--out", tmp_path / "out")
    assert run.returncode == 2 and run.stderr.startswith("error: ") and "levers" in run.stderr


def map_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="d">(.*?)</script>', page, re.DOTALL).group(1))


def test_the_map_has_a_1_km_layer_a_lever_that_adds_up_to_all_on_every_cell(reference):
    out, _ = reference
    page = (out / "attribution_map.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=[\"']?https?:", page) and "default-src 'none'" in page
    data = map_data(page)
    assert data["levers"] == ["vision_fund#0", "talent#0", "all"] and data["cells"]["km2"] == pytest.approx(1.0)
    values = np.array(data["cells"]["values"], dtype=np.float64)  # (levers + all, cells), CNY per km²
    assert values.shape[1] == page.count("<rect data-c=") > 10 and np.abs(values[-1]).max() > 0
    assert np.abs(values[:-1].sum(axis=0) - values[-1]).max() <= 2  # efficiency per cell, up to rounding to whole yuan
    table = pd.read_csv(out / "attribution.csv", keep_default_na=False)
    city = table[(table["year"] == 2024) & (table["metric"] == "revenue_cny") & (table["zone"] == "") & (table["district"] == "")
                 & (table["track"] == "")].set_index("lever")["value"]
    for i, lever in enumerate(data["levers"]):  # the cells hold the same revenue as the city rows
        assert values[i].sum() * data["cells"]["km2"] == pytest.approx(city[lever], rel=1e-3, abs=len(values[i]))


def test_the_attribution_map_renders_every_layer_offline(reference):
    if not maps.CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {maps.CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    path = reference[0] / "attribution_map.html"
    data = map_data(path.read_text(encoding="utf-8"))
    errors, fetched = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(maps.CHROMIUM), args=list(maps.CHROMIUM_ARGS))
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else (fetched.append(route.request.url), route.abort()))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(path.as_uri())
            buttons = page.locator("#levers button")
            assert buttons.count() == len(data["levers"])
            for i, lever in enumerate(data["levers"]):
                buttons.nth(i).click()
                assert page.locator("#map").get_attribute("data-lever") == lever
                fills = page.eval_on_selector_all("rect[data-c]", "rs => rs.map(r => r.getAttribute('fill'))")
                assert [f != "none" for f in fills] == [v != 0 for v in data["cells"]["values"][i]]
            title = page.locator("#title").inner_text()
            page.locator("#lang").click()
            assert "CNY per km²" in page.locator("#title").inner_text() and "元/平方公里" in title
            assert "CNY/km²" in page.locator("#legend").inner_text()
        finally:
            browser.close()
    assert not errors and not fetched
