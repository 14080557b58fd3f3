"""Speed-up of an ensemble on 2 local Dask workers against 1, and the chance of meeting the 2027 targets.

    python benchmarks/ensemble_speedup.py [SCENARIO] [--members 20] [--seed S] [--scale X] [--keep DIR] [--json]

Runs the same ensemble (default: the full baseline, 20 members, the
scenario's seed) twice from scratch, on a LocalCluster of 1 and of 2
single-threaded worker processes, checks that both give byte-identical
ensemble_metrics.csv, targets.json and probability.tif, and prints the wall
times, the speed-up and the probability of meeting each 2027 target (with N,
the seed and a Wilson 90% interval). Wall times include starting and stopping
the cluster and writing the outputs, as a user would see them. The load
average is printed too: on a shared machine other work slows both runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPARED = ("ensemble_metrics.csv", "targets.json", "probability.tif")


def main() -> int:
    from twin.policy import scenario
    from twin.studies.ensemble import run_ensemble

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(scenario.BASELINE))
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--seed", type=int, help="root seed (default: the scenario's)")
    parser.add_argument("--scale", type=float, help="override params.scale (default: the scenario's, 1 = full city)")
    parser.add_argument("--keep", type=Path, help="keep both runs' outputs under this folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    spec = scenario.load(args.scenario)
    if args.scale is not None:
        spec = spec.model_copy(update={"params": {**spec.params, "scale": args.scale}})
    seed = spec.seed if args.seed is None else args.seed
    base = args.keep or Path(tempfile.mkdtemp(prefix="ensemble-bench-"))
    load_before = os.getloadavg()
    seconds = {}
    for workers in (1, 2):
        out = base / f"workers_{workers}"
        started = time.perf_counter()
        run_ensemble(spec, args.members, out, workers=workers, quiet=True, seed=seed)
        seconds[workers] = time.perf_counter() - started
    identical = all((base / "workers_1" / n).read_bytes() == (base / "workers_2" / n).read_bytes() for n in COMPARED)
    targets = json.loads((base / "workers_2" / "targets.json").read_text(encoding="utf-8"))
    manifest = json.loads((base / "workers_2" / "manifest.json").read_text(encoding="utf-8"))
    report = {
        "scenario": spec.name,
        "scale": spec.params.get("scale", 1.0),
        "members": args.members,
        "seed": seed,
        "seconds_1_worker": round(seconds[1], 2),
        "seconds_2_workers": round(seconds[2], 2),
        "speedup": round(seconds[1] / seconds[2], 3),
        "member_mean_s": manifest["timings_s"].get("member_mean"),
        "outputs_identical": identical,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "target_year": targets["year"],
        "targets": {k: {f: v[f] for f in ("met", "members", "probability", "probability_ci90")} for k, v in targets["targets"].items()},
        "outputs": str(base),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"{spec.name} (scale {report['scale']:g}), {args.members} members, seed {seed}, {os.cpu_count()} CPUs")
        print(f"  1 worker : {seconds[1]:7.1f} s")
        print(f"  2 workers: {seconds[2]:7.1f} s   speed-up {report['speedup']:.2f}x   (member mean {report['member_mean_s']} s)")
        print(f"  outputs byte-identical across worker counts: {identical}")
        print(f"  load average before {report['load_average_before']}, after {report['load_average_after']}")
        print(f"  probability of meeting the 2027 targets (judged in {targets['year']}), N = {args.members}, seed {seed}:")
        for metric, t in targets["targets"].items():
            lo, hi = t["probability_ci90"]
            print(f"    {metric:<16} {t['probability']:6.1%}  ({t['met']}/{t['members']}, 90% CI {lo:.0%}-{hi:.0%})")
        print(f"  outputs in {base}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
