"""The studio page in real headless Chromium with every request off localhost blocked: switch a lever off, run,
read the figures, check them against the command line, see a one-line error, keep sessions apart, save the scenario."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from studio_helpers import Server, cli_metrics

expect = pytest.importorskip("playwright.sync_api").expect


class Session:
    """A browser context (its own cookies) on the studio, recording every request that tried to leave it."""

    def __init__(self, browser, studio_server: Server) -> None:
        self.left: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
        self.context.route("**/*", self._route(studio_server.base))
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(studio_server.url)
        expect(self.page.locator("#run")).to_be_enabled(timeout=60_000)

    def _route(self, base: str):
        def route(route) -> None:
            if route.request.url.startswith((base + "/", "data:", "blob:", "about:")):
                route.continue_()
            else:
                self.left.append(route.request.url)
                route.abort()
        return route

    def cookie(self) -> dict:
        """The session's cookie, for asking the API as this browser."""
        return {"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in self.context.cookies())}


def test_switch_a_lever_off_run_read_save_and_stay_apart(browser, studio_server, studio_folder):
    first = Session(browser, studio_server)
    page = first.page
    page.locator('[data-lever-on="0"]').uncheck()  # compute_vouchers
    expect(page.locator("#run")).to_be_enabled(timeout=60_000)
    page.click("#run")
    expect(page.locator("#status")).to_have_text(re.compile("^done"), timeout=600_000)
    run_id = page.locator("#save").get_attribute("href").split("/")[3]
    status, data = studio_server.json(f"/api/runs/{run_id}", headers=first.cookie())
    assert status == 200
    head = {row["metric"]: row for row in data["figures"]["headline"]}
    shown = page.locator('#headline tr[data-metric="revenue_cny"] td')
    assert float(shown.nth(1).inner_text().replace(',', '')) == round(head['revenue_cny']['scenario'] / 1e8, 1)  # the page drops a trailing .0
    assert float(shown.nth(2).inner_text().replace(',', '')) == round(head['revenue_cny']['baseline'] / 1e8, 1)  # the page drops a trailing .0
    assert "compute_vouchers" not in page.locator("#spend").inner_text()
    expect(page.frame_locator("#map").locator("#year-slider")).to_be_attached(timeout=60_000)
    expect(page.frame_locator("#map").locator("#layers-panel")).to_have_class(re.compile("collapsed"))  # folded at 1280 px
    expect(page.frame_locator("#map").locator("#side")).not_to_have_class(re.compile("collapsed"))  # the key figures stay open
    # each lever is labelled as metrics.csv and levers_set label it: kind#n among levers of its kind
    legends = page.locator("#levers legend").all_inner_texts()
    assert [text.strip().split()[0] for text in legends][:3] == ["compute_vouchers#0", "model_subsidies#0", "vision_fund#0"], legends
    # "Save scenario" gives a YAML that run_scenario.py, alone, runs to the studio's bytes
    with page.expect_download() as download:
        page.click("#save")
    download.value.save_as(studio_folder / "saved.yaml")
    studio_bytes = studio_server.call(f"/api/runs/{run_id}/metrics.csv", headers=first.cookie())[1]
    cli_bytes = cli_metrics(studio_folder, studio_folder / "saved.yaml", None)
    assert cli_bytes == studio_bytes
    metrics = pd.read_csv(io.BytesIO(cli_bytes), encoding="utf-8-sig")  # and the page shows the command line's figure
    revenue = metrics[(metrics["level"] == "city") & (metrics["metric"] == "revenue_cny") & (metrics["year"] == 2024)]["value"].item()
    assert float(shown.nth(1).inner_text().replace(',', '')) == round(revenue / 1e8, 1)
    # a bad value gets the command line's one-line error beside its control, and nothing can run
    end_year = page.locator('[data-path="lever.1.end_year"]')
    end_year.fill("soon")
    end_year.dispatch_event("change")
    expect(page.locator('[data-error-for="lever.1"]')).to_have_text(
        re.compile(r"^error: studio\.yaml: levers\.0\.end_year: .+"), timeout=30_000)  # lever 0 is off: it is the first posted
    expect(page.locator("#run")).to_be_disabled()
    # a second browser session sees neither the run nor its figures
    second = Session(browser, studio_server)
    assert studio_server.json(f"/api/runs/{run_id}", headers=second.cookie())[0] == 404
    assert second.page.locator("#headline").inner_text() == ""
    # the English/Chinese switch
    page.click("#lang")
    expect(page.locator("h1")).to_have_text("情景工作室")
    assert first.left == [] and second.left == [], "no request may leave localhost"
    assert first.errors == [] and second.errors == []
    first.context.close()
    second.context.close()
