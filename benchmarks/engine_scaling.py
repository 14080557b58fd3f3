"""Engine speed and memory across sizes, and the ratio to the per-agent reference.

    python benchmarks/engine_scaling.py            # prints a Markdown table and the checks

Each size runs ``python -m twin.bench`` in its own process so peak memory is
that run's alone. The reference model is timed on a smaller city (it is
about a hundred times slower); the ratio compares cost per agent-step.
"""

from __future__ import annotations

import json
import subprocess
import sys

RUNS = [  # engine, agents, months timed, trials (the fastest counts; see twin.bench)
    ("vectorized", 100_000, 24, 3),
    ("vectorized", 1_000_000, 24, 3),
    ("vectorized", 2_000_000, 24, 3),
    ("reference", 20_000, 3, 1),
]


def bench(engine: str, agents: int, steps: int, repeat: int) -> dict:
    """One benchmark run in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-m", "twin.bench", "--engine", engine, "--agents", str(agents), "--steps", str(steps), "--repeat", str(repeat), "--json"],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    """Run every size and print the table and the targets of the engine issue."""
    results = [bench(*run) for run in RUNS]
    print("| engine | agents | steps | seconds | agent-steps/s (fastest trial) | median trial | ns per agent-step | peak RSS MB | bytes/agent beyond grid |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['engine']} | {r['agents']:,} | {r['steps']} | {r['seconds']:.2f} | {r['agent_steps_per_s']:,.0f} | {r['median_agent_steps_per_s']:,.0f} | "
              f"{r['seconds_per_agent_step'] * 1e9:.0f} | {r['peak_rss_mb']:.0f} | {r['bytes_per_agent_beyond_grid']:.0f} |")
    small, million, two_million, reference = results
    print()
    print(f"agent-steps/s at 1e6 agents: {million['agent_steps_per_s']:,.0f} fastest trial, {million['median_agent_steps_per_s']:,.0f} median (target 2e7)")
    print(f"speed-up over the reference per agent-step: {reference['seconds_per_agent_step'] / million['seconds_per_agent_step']:,.0f}x (target 100x)")
    print(f"cost per agent-step at 2e6 / at 1e5: {two_million['seconds_per_agent_step'] / small['seconds_per_agent_step']:.2f} (target <= 1.3)")
    print(f"bytes per agent beyond the grid at 1e6: {million['bytes_per_agent_beyond_grid']:.0f} (target < 200)")


if __name__ == "__main__":
    main()
