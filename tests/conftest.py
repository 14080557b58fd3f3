"""Shared fixtures: the shipped layer stack is loaded once per test session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import layers
from twin.policy import scenario


@pytest.fixture(scope="session")
def stack() -> layers.LayerStack:
    """The shipped layers at the default 250 m grid."""
    return layers.load()


def kill_midway(args: list[str], cwd: Path, env: dict[str, str], folder: Path, pattern: str, count: int) -> None:
    """Run ``python run_scenario.py ARGS`` in its own process group and SIGKILL the whole group once
    ``count`` files in ``folder`` match ``pattern``: a real kill mid-study, for resume tests."""
    process = subprocess.Popen([sys.executable, "run_scenario.py", *args], cwd=cwd, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(list(folder.glob(pattern))) < count:
        assert process.poll() is None and time.monotonic() < deadline, "no member finished"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright, for the browser tests; they skip only when it is absent."""
    from twin.outputs import maps

    if not maps.CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {maps.CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(maps.CHROMIUM), args=list(maps.CHROMIUM_ARGS))
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def studio_folder(tmp_path_factory) -> Path:
    """A tiny city's folder for one studio test module (studio_helpers.tiny_city)."""
    from studio_helpers import tiny_city

    folder = tmp_path_factory.mktemp("studio")
    tiny_city(folder)
    return folder


@pytest.fixture(scope="module")
def studio_server(studio_folder: Path):
    """``run_scenario.py --studio`` on the tiny city, one per test module, stopped after it."""
    from studio_helpers import Server

    server = Server(studio_folder, "tiny.yaml")
    yield server
    server.stop()


def tiny_baseline(folder: Path, scale: float) -> Path:
    """``folder/tiny.yaml``: the baseline's levers on a tiny city (``scale``, no anchors) over 2024-2025."""
    data = yaml.safe_load(scenario.BASELINE.read_text(encoding="utf-8"))
    data.pop("extends", None)
    data |= {"name": "tiny", "years": {"start": 2023, "end": 2025}, "params": {"scale": scale, "anchors": 0}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
