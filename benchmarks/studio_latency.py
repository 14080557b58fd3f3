"""How long a what-if takes in the studio, measured through its API as the page sees it.

    python benchmarks/studio_latency.py [SCENARIO] [--scale 1.0] [--seed 1]

Starts ``run_scenario.py --studio SCENARIO --port 0 --no-browser`` and prints, in seconds:
``start`` (process start to the URL printed), ``first`` (the first run: the compiled
kernels load, the scenario and its baseline run and are written), ``what_if`` (the
scenario with its first lever switched off; the baseline of the seed is cached),
``toggle_back`` (the first request again, from the cache). ``--scale`` below 1
runs a smaller city (params.scale).

Measured 4 December 2026 on the 2-core machine, full scale, baseline, seed 1, kernels already in
numba's on-disk cache. Quiet (load average about 1.5): start 1.9 s, first 5.4 s (the baseline is its own
reference: one run, written), what-if (compute_vouchers off, baseline cached) 4.5 s, toggle back 0.05 s.
Busy (load average 5-11, other jobs running): start 2.5-7.6 s, first 34-173 s, what-if 18-50 s, toggle
back under 0.1 s. Of a quiet full-scale run, the engine takes 4.5 s (setup 0.9), layers 0.6 s, map.html
0.3 s, firms.parquet 0.2 s, the difference map 0.2 s, metrics.csv and density.tif under 0.05 s: the time
is the engine's, not synthesis or writing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _call(base: str, path: str, body: dict | None = None) -> dict:
    """A JSON answer of the studio."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data, method="POST" if data else "GET"), timeout=600) as response:
        return json.loads(response.read())


def _timed_run(base: str, scenario: dict, seed: int) -> tuple[float, dict]:
    """Seconds from POST /api/runs to a finished run, and its status."""
    started = time.perf_counter()
    job = _call(base, "/api/runs", {"scenario_yaml": json.dumps(scenario), "seed": seed, "members": 1})
    while job["status"] not in ("done", "failed"):
        time.sleep(0.1)
        job = _call(base, f"/api/runs/{job['id']}")
    if job["status"] != "done":
        raise SystemExit(f"the run failed: {job.get('message')}")
    return time.perf_counter() - started, job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="baseline")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, str(REPO / "run_scenario.py"), "--studio", args.scenario, "--port", "0", "--no-browser"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        url = server.stdout.readline().split()[1]
        times = {"start": time.perf_counter() - started}
        base = url[:url.index("/", len("http://"))]
        scenario = _call(base, "/api/scenarios")["start"]
        if args.scale != 1.0:
            scenario["params"] = {**scenario.get("params", {}), "scale": args.scale}
        times["first"], first = _timed_run(base, scenario, args.seed)
        what_if = {**scenario, "levers": scenario["levers"][1:]}
        times["what_if"], changed = _timed_run(base, what_if, args.seed)
        times["toggle_back"], back = _timed_run(base, scenario, args.seed)
        assert back["cached"] and back["figures"] == first["figures"]
        revenue = {row["metric"]: row for row in changed["figures"]["headline"]}["revenue_cny"]
        print(json.dumps({k: round(v, 2) for k, v in times.items()} | {
            "what_if_lever": f"{scenario['levers'][0]['kind']} off", "what_if_revenue_difference_cny": revenue["difference"],
            "scale": args.scale, "seed": args.seed, "scenario": args.scenario}, ensure_ascii=False))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
