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
