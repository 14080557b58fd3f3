"""``python -m twin.bench``: agent-steps per second and peak memory of one engine.

    python -m twin.bench --agents 1000000 --steps 24 [--repeat 3] [--engine vectorized|reference] [--json]

The population is a synthesized city without the anchor firms, scaled so
that firms plus talent come to about ``--agents``. The timing covers the
steps only; setup is reported apart, and so is the city's first month, which
also loads the threaded copies of the compiled kernels (only large inputs
reach them) and first touches the new city's arrays: the timed months are
the ones a long run is made of. ``--repeat`` times that many windows of
``--steps`` months one after another on the same city and reports the
fastest window's figures (as ``timeit`` takes the best of its repeats: on a
shared machine the slower windows measure the other tenants) beside the
median window's rate and every window's. Memory beyond the grid is the peak
RSS of the run less the peak RSS of the same process after running a tiny
city on the same grid, so fixed costs (libraries, the layers, grid-sized
arrays) cancel out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence

import numpy as np

import layers
from twin.engine.params import Params


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(agents: int, steps: int, engine: str = "vectorized", seed: int = 1, repeat: int = 1) -> dict[str, float | int | str | list[float]]:
    """Build a city of about ``agents`` agents, step its first month, time ``repeat`` windows of ``steps`` months, and report the figures."""
    from twin.simulation.model import VisionValleyModel
    from twin.simulation.reference import ReferenceModel

    cls = VisionValleyModel if engine == "vectorized" else ReferenceModel
    stack = layers.load()
    warm = cls(seed=seed, stack=stack, anchors=0, scale=1e-4)
    warm.step()
    baseline = _peak_rss_mb()
    del warm
    started = time.perf_counter()
    model = cls(seed=seed, stack=stack, anchors=0, scale=agents / Params(scale=1.0).expected_agents)
    setup = time.perf_counter() - started
    started = time.perf_counter()
    model.step()
    first = time.perf_counter() - started
    population = _agents(model)
    windows = [_window(model, steps) for _ in range(repeat)]
    seconds, agent_steps = min(windows, key=lambda w: w[0] / w[1])
    rates = [round(n / s, 1) for s, n in windows]
    peak = _peak_rss_mb()
    return {
        "engine": engine,
        "agents": population,
        "steps": steps,
        "repeat": repeat,
        "seconds": round(seconds, 4),
        "agent_steps_per_s": round(agent_steps / seconds, 1),
        "median_agent_steps_per_s": float(np.median(rates)),
        "windows_agent_steps_per_s": rates,
        "seconds_per_agent_step": seconds / agent_steps,
        "setup_seconds": round(setup, 3),
        "first_step_seconds": round(first, 3),
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "bytes_per_agent_beyond_grid": round((peak - baseline) * 2**20 / max(population, 1), 1),
        "grid_cells": model.geo.size,
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine may be shared: read the speed against it
    }


def _window(model, steps: int) -> tuple[float, int]:
    """Seconds and agent-steps of ``steps`` months (agents counted at the start of each)."""
    agent_steps = 0
    started = time.perf_counter()
    for _ in range(steps):
        agent_steps += _agents(model)
        model.step()
    return time.perf_counter() - started, agent_steps


def _agents(model) -> int:
    """Live firms plus live talent, for either engine."""
    if hasattr(model, "state"):
        return model.state.agents
    return len(model.firms) + len(model.workers)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m twin.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1_000_000, help="about how many agents (default 1,000,000)")
    parser.add_argument("--steps", type=int, default=12, help="months to time (default 12)")
    parser.add_argument("--repeat", type=int, default=3, help="windows of --steps months to time; the fastest is reported (default 3)")
    parser.add_argument("--engine", choices=("vectorized", "reference"), default="vectorized")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default prints it too, indented)")
    args = parser.parse_args(argv)
    if args.agents < 100 or args.steps < 1 or args.repeat < 1:
        print("error: arguments: --agents must be at least 100, --steps and --repeat at least 1", file=sys.stderr)
        return 2
    result = run(args.agents, args.steps, args.engine, args.seed, args.repeat)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
