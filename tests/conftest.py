"""Shared fixtures: the shipped layer stack is loaded once per test session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import layers


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
