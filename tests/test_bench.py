"""``python -m twin.bench`` reports the fastest of its trials, beside every trial, and refuses bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twin.bench", *args], capture_output=True, text=True, timeout=600)


def test_reports_the_fastest_trial_and_every_trial():
    done = _bench("--agents", "3000", "--steps", "2", "--repeat", "3", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    trials = result["trials_agent_steps_per_s"]
    assert len(trials) == 3 and result["repeat"] == 3
    assert result["agent_steps_per_s"] == max(trials)
    assert min(trials) <= result["median_agent_steps_per_s"] <= max(trials)
    assert result["agent_steps_per_s"] * result["seconds"] >= 2 * 0.9 * result["agents"]  # two months of about the city's agents
    assert 0.5 * 3000 < result["agents"] < 2 * 3000  # the city is scaled to about --agents
    # per agent-step, not per month or per run: two months of about `agents` agents (the city grows a little as it runs)
    assert result["seconds_per_agent_step"] == pytest.approx(result["seconds"] / (2 * result["agents"]), rel=0.2)


def test_refuses_a_repeat_below_one():
    done = _bench("--agents", "3000", "--repeat", "0")
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and len(done.stderr.strip().splitlines()) == 1
