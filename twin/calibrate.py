"""``python -m twin.calibrate [--trials N] [--scale s] [--workers w]``: fit the growth parameters (see twin.studies.calibration)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .studies.calibration import Design, calibrate, markdown, write_calibration
from .studies.cluster import dask_client


def main(argv: list[str] | None = None) -> int:
    """Run the calibration on a local Dask cluster and write twin/engine/calibration.json."""
    parser = argparse.ArgumentParser(prog="python -m twin.calibrate", description=__doc__)
    parser.add_argument("--trials", type=int, default=24, help="optuna candidates (default 24)")
    parser.add_argument("--scale", type=float, default=0.05, help="population scale of each run (default 0.05; anchors on)")
    parser.add_argument("--seeds", type=int, default=6, help="common seeds per candidate (default 6)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    design = Design(scale=args.scale, seeds=tuple(range(1, args.seeds + 1)))
    with dask_client(args.workers, args.scheduler) as client, tqdm(total=args.trials, desc="calibrate", unit="candidate", file=sys.stderr) as bar:
        record = calibrate(args.trials, design, client, progress=bar.update)
    write_calibration(record)
    (Path(__file__).resolve().parents[1] / "docs" / "calibration.md").write_text(markdown(record), encoding="utf-8")
    for row in record["targets"]:
        print(f"{row['target']:<45} published {row['published']:+.4f}  model {row['model']:+.4f}  error {row['error']:+.4f}  I {row['implausibility']:.2f}")
    print("fitted:", record["fitted"], "|", record["posterior_note"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
