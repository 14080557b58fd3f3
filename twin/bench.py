"""``python -m twin.bench``: agent-steps per second and peak memory of one engine.

    python -m twin.bench --agents 1000000 --steps 24 [--repeat 3] [--engine vectorized|reference] [--json]

The population is a synthesized city without the anchor firms, scaled so
that firms plus talent come to about ``--agents``. The timing covers the
steps only; setup is reported apart, and so is the city's first month, which
also loads the threaded copies of the compiled kernels (only large inputs
reach them) and first touches the new city's arrays: the timed months are
the ones a long run is made of. ``--repeat`` builds the same city that many
times over and times each one's months; the fastest trial's figures are
reported (as ``timeit`` takes the best of its repeats: on a shared machine
the slower trials measure the other tenants), beside the median trial's
rate and every trial's. Each trial starts from the same population: the
city grows as it runs, and a bigger city is cheaper per agent. Memory
beyond the grid is the peak RSS of the first trial less the peak RSS of the
same process after running a tiny city on the same grid, so fixed costs
(libraries, the layers, grid-sized arrays) cancel out, per agent of the
city at its largest.
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
    """Build a city of about ``agents`` agents, step its first month, time the next ``steps`` months; ``repeat`` times over, and report the figures."""
    from twin.simulation.model import VisionValleyModel
    from twin.simulation.reference import ReferenceModel

    cls = VisionValleyModel if engine == "vectorized" else ReferenceModel
    stack = layers.load()
    warm = cls(seed=seed, stack=stack, anchors=0, scale=1e-4)
    warm.step()
    baseline = _peak_rss_mb()
    del warm
    scale = agents / Params(scale=1.0).expected_agents
    trials = [_trial(cls, stack, seed, scale, steps)]
    peak = _peak_rss_mb()  # of one city: later trials rebuild it while the allocator may still hold the last one's pages
    trials += [_trial(cls, stack, seed, scale, steps) for _ in range(repeat - 1)]
    best = min(trials, key=lambda t: t["seconds"] / t["agent_steps"])
    rates = [round(t["agent_steps"] / t["seconds"], 1) for t in trials]
    return {
        "engine": engine,
        "agents": best["agents"],
        "steps": steps,
        "repeat": repeat,
        "seconds": round(best["seconds"], 4),
        "agent_steps_per_s": max(rates),
        "median_agent_steps_per_s": float(np.median(rates)),
        "trials_agent_steps_per_s": rates,
        "seconds_per_agent_step": best["seconds"] / best["agent_steps"],
        "setup_seconds": round(best["setup"], 3),
        "first_step_seconds": round(best["first"], 3),
        "peak_rss_mb": round(peak, 1),
        "baseline_rss_mb": round(baseline, 1),
        "bytes_per_agent_beyond_grid": round((peak - baseline) * 2**20 / max(best["largest"], 1), 1),
        "grid_cells": best["grid_cells"],
        "load_average_1min": round(os.getloadavg()[0], 2),  # the machine may be shared: read the speed against it
    }


def _trial(cls, stack, seed: int, scale: float, steps: int) -> dict[str, float]:
    """One fresh city: seconds to build it and to step its first month, then the seconds and agent-steps of ``steps`` months."""
    started = time.perf_counter()
    model = cls(seed=seed, stack=stack, anchors=0, scale=scale)
    setup = time.perf_counter() - started
    started = time.perf_counter()
    model.step()
    first = time.perf_counter() - started
    population, agent_steps = _agents(model), 0
    started = time.perf_counter()
    for _ in range(steps):
        agent_steps += _agents(model)
        model.step()
    seconds = time.perf_counter() - started
    return {"setup": setup, "first": first, "agents": population, "agent_steps": agent_steps, "seconds": seconds,
            "largest": max(population, _agents(model)), "grid_cells": model.geo.size}


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
    parser.add_argument("--repeat", type=int, default=3, help="trials, each a fresh city timed over --steps months; the fastest is reported (default 3)")
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
