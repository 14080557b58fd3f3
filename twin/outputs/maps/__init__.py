"""Interactive offline maps of a run or an ensemble (``map.html``) and PNG snapshots of them for slides.

:func:`write_map` draws one run (or two, compared); :func:`write_probability_map`
draws an ensemble's per-cell probability that revenue grows over the base
year on the same page, whose payload ``mode`` ("single", "compare" or
"probability") picks the layers and panels. Every mode draws the same quiet
base map (water, built-up land, metro lines) and credits its sources.

The page is one self-contained file: the deck.gl bundle that pydeck ships, the
page's own script and style (``map.js``, ``map.css``, ``page.html`` beside this
module) and the run's data as embedded JSON. It works with no network: nothing
refers to a remote URL, and a Content-Security-Policy forbids every fetch and
admits the page's scripts by hash only, so markup that slipped in from data
could not run even if the page's own escaping failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import importlib.resources
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ...simulation.run import RunResult
from ..folder import write_file
from . import payload

if TYPE_CHECKING:
    import numpy as np
    from playwright.sync_api import Browser, Page, Route

    from layers import LayerStack

    from ...policy.scenario import Scenario

ASSETS = Path(__file__).resolve().parent
"""Where map.js, map.css and page.html live."""

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: Playwright's own browser download does not work here (issue 5)."""

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
"""Headless, software WebGL, and none of Chromium's own background traffic."""

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
"""The only URL schemes a map page may load; anything else is blocked when rendering."""

SNAPSHOT_SIZE = {"width": 1600, "height": 900}
"""PNG size: 16:9, for slides."""

READY_TIMEOUT_MS = 120_000
"""How long to wait for the first frame: software WebGL on a slow machine is slow."""

_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
"""Characters that could end or confuse a <script> block; JSON strings may carry them as \\u escapes."""


LANGUAGES = ("zh", "en")
"""The page's languages; ``map.html#lang=en`` opens it in English whatever its default."""


def write_map(path: str | os.PathLike[str], result: RunResult, other: RunResult | None = None, pairs: list[tuple[RunResult, RunResult]] | None = None, lang: str = "zh") -> None:
    """Write the map of ``result`` (or, with ``other``, of ``result`` against ``other``) to ``path``.

    ``lang`` is the language the page opens in. The file is written beside
    ``path`` and renamed into place, so a reader never sees half a page.
    """
    write_file(Path(path), _render_html(payload.build(result, other, pairs) | {"lang": _language(lang)}).encode("utf-8"))


def _language(lang: str) -> str:
    """A page language, checked: a typo would otherwise silently give Chinese."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown map language {lang!r}; use one of {', '.join(LANGUAGES)}")
    return lang


def write_probability_map(
    path: str | os.PathLike[str],
    probability: Mapping[str | int, np.ndarray],
    stack: LayerStack,
    spec: Scenario,
    members: int,
    seed: int,
    targets: Mapping | None = None,
    lang: str = "zh",
) -> None:
    """Write an ensemble's map to ``path``: per year, the chance that each 1 km cell's revenue exceeds the base year's.

    ``probability`` maps years to grids on ``stack.grid`` (the share of
    members whose revenue there grew, as ``Aggregate.probability`` gives it), shown
    as the mean over each 1 km cell; ``members`` and ``seed`` describe the
    ensemble, and ``targets`` (one point of targets.json, or the whole file
    without a sweep) adds the chance of meeting each 2027 target. Written
    atomically, and the same bytes for the same inputs.
    """
    data = payload.build_probability(probability, stack, spec, members, seed, targets) | {"lang": _language(lang)}
    write_file(Path(path), _render_html(data).encode("utf-8"))


def _render_html(data: dict) -> str:
    """The page for a payload from :func:`payload.build`: template, style, bundle, script and data."""
    parts = {"CSS": _asset("map.css"), "DATA": embed_json(data), "BUNDLE": _deck_bundle(), "APP": _asset("map.js")}
    parts["CSP"] = _content_security_policy(scripts=(parts["BUNDLE"], parts["APP"]), styles=(parts["CSS"],))
    # One pass over the template only, so nothing inside an inserted part is ever substituted.
    return re.sub(r"@@([A-Z]+)@@", lambda m: parts[m.group(1)], _asset("page.html"))


def embed_json(data: dict) -> str:
    """JSON that is safe inside a <script> element and the same bytes for the same data."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.translate(_JSON_ESCAPES)


def _content_security_policy(scripts: tuple[str, ...], styles: tuple[str, ...]) -> str:
    """No fetches at all; only our own script and style blocks, named by hash, may run.

    Images from data: and blob: URLs stay allowed: loaders.gl probes image
    format support with a data: image, which is local.
    """
    script_hashes = " ".join(_csp_hash(s) for s in scripts)
    style_hashes = " ".join(_csp_hash(s) for s in styles)
    return (
        f"default-src 'none'; script-src {script_hashes}; style-src {style_hashes}; "
        "img-src data: blob:; base-uri 'none'; form-action 'none'"
    )


def _csp_hash(text: str) -> str:
    """A CSP source expression for an inline block's exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _asset(name: str) -> str:
    """One of the page's own files."""
    return (ASSETS / name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _deck_bundle() -> str:
    """pydeck's deck.gl bundle (what ``to_html(offline=True)`` embeds), safe to inline.

    Its trailing source-map comment points at a file the page does not carry,
    so it goes; a bundle that could close or comment out its <script> element
    is refused rather than embedded.
    """
    js = (importlib.resources.files("pydeck") / "nbextension" / "static" / "index.js").read_text(encoding="utf-8")
    js = re.sub(r"\n//# sourceMappingURL=\S*\s*$", "\n", js)
    lowered = js.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise RuntimeError("pydeck's deck.gl bundle contains '</script' or '<!--' and cannot be inlined safely")
    return js


def png_unavailable() -> str | None:
    """Why this machine cannot render a map to PNG, naming what to install; None when it can.

    The browser is a real dependency: Chromium comes from the system's packages, Playwright (which drives it)
    from pip, so a run checks for both before any work rather than failing after the simulation.
    """
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium not found at {CHROMIUM} (as root: apt-get install chromium fonts-wqy-microhei)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append('Playwright for Python is not installed (pip install -e ".[png]", or pip install playwright)')
    return "PNG export needs headless Chromium driven by Playwright: " + "; ".join(missing) if missing else None


def write_png(html_path: str | os.PathLike[str], png_path: str | os.PathLike[str], year: int | None = None,
              lang: str | None = None) -> None:
    """Render a map page as a slide (presentation mode, no controls) in headless Chromium and save it as a PNG:
    the final year, or ``year``, in the page's default language, or ``lang``.

    Raises RuntimeError when Chromium (/usr/bin/chromium) or Playwright is
    missing, ValueError for a year the map does not hold or an unknown language.
    """
    write_file(Path(png_path), slides(html_path, [year], lang)[0])


def write_pngs(html_path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> list[Path]:
    """One slide per language, ``map_zh.png`` and ``map_en.png`` in ``folder``: slides for either audience."""
    paths = [Path(folder) / f"map_{lang}.png" for lang in LANGUAGES]
    for lang, path in zip(LANGUAGES, paths):
        write_png(html_path, path, lang=lang)
    return paths


def slides(html_path: str | os.PathLike[str], years: list[int | None], lang: str | None = None) -> list[bytes]:
    """PNG slides of a map page, one per year (None: the final year), from one browser page in ``lang``."""
    html_path = Path(html_path).resolve()
    held = map_years(html_path)
    for year in years:
        if year is not None and year not in held:
            raise ValueError(f"{html_path}: year {year} is not in the map (years {held[0]}-{held[-1]})")
    return _off_event_loop(_snapshots, html_path, years, None if lang is None else _language(lang))


def map_years(html_path: Path) -> list[int]:
    """The years a map page holds, read from its embedded data: a bad year fails before any browser starts."""
    found = re.search(r'<script type="application/json" id="vv-data">(.*?)</script>', html_path.read_text(encoding="utf-8"), re.S)
    if found is None:
        raise ValueError(f"{html_path}: not a map written by twin.maps (no embedded data)")
    return json.loads(found.group(1))["years"]


def _snapshots(html_path: Path, years: list[int | None], lang: str | None) -> list[bytes]:
    """Open the page as a slide (in ``lang`` through the address's #lang=) with the network blocked; per year,
    pick it, wait for a fresh frame and screenshot."""
    with _launch_chromium() as browser:
        page = browser.new_page(viewport=SNAPSHOT_SIZE)
        page.route("**/*", _local_only)
        page.goto(html_path.as_uri() + (f"#lang={lang}&slide" if lang else "#slide"))
        wait_until_drawn(page, READY_TIMEOUT_MS)
        shots = []
        for year in years:
            if year is not None:
                page.evaluate("year => window.vvMap.setYear(year)", year)
            page.evaluate("() => window.vvMap.nextFrame()")
            shots.append(page.screenshot(type="png"))
        return shots


def wait_until_drawn(page: Page, timeout_ms: int) -> None:
    """Wait for the map's first frame.

    Playwright's ``wait_for_function`` polls with ``eval``, which the page's
    Content-Security-Policy forbids, so this awaits the page's own promise.
    """
    started = page.evaluate(
        """ms => window.vvMap ? Promise.race([window.vvMap.ready.then(() => true),
            new Promise((_, reject) => setTimeout(() => reject(new Error('no frame drawn in ' + ms + ' ms')), ms))]) : false""",
        timeout_ms,
    )
    if not started:
        raise RuntimeError(f"{page.url}: the map script did not start (see the browser console)")


def _local_only(route: Route) -> None:
    """Let local URLs through and abort everything else: the page must never reach the network."""
    if route.request.url.startswith(LOCAL_SCHEMES):
        route.continue_()
    else:
        route.abort()


@contextlib.contextmanager
def _launch_chromium() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright, with a clear error when either is missing."""
    missing = png_unavailable()
    if missing:
        raise RuntimeError(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def _off_event_loop(fn: Callable, *args):
    """Call ``fn`` here, or in a worker thread when an asyncio loop runs (a Jupyter kernel):
    Playwright's sync API refuses to run inside one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()
