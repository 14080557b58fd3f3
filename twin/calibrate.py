"""``python -m twin.calibrate [--trials N] [--scale s] [--workers w] [--hindcast]``: fit the growth parameters (see twin.studies.calibration)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .engine.params import CALIBRATION_FILE
from .outputs.folder import write_file
from .studies.calibration import HINDCAST, Design, calibrate, markdown, write_calibration
from .studies.cluster import dask_client


def main(argv: list[str] | None = None) -> int:
    """Run the calibration on a local Dask cluster and write twin/engine/calibration.json."""
    parser = argparse.ArgumentParser(prog="python -m twin.calibrate", description=__doc__)
    parser.add_argument("--trials", type=int, default=56, help="optuna candidates (default 56)")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale of each run (default 1, see Design; anchors on)")
    parser.add_argument("--seeds", type=int, default=6, help="common seeds per candidate (default 6)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    parser.add_argument("--hindcast", action="store_true",
                        help="fit the hindcast's calibration on figures up to 2020 only (key 'hindcast'; defaults untouched)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    base = HINDCAST if args.hindcast else Design()
    design = dataclasses.replace(base, scale=args.scale, seeds=tuple(range(1, args.seeds + 1)))
    with dask_client(args.workers, args.scheduler) as client, tqdm(total=args.trials, desc="calibrate", unit="candidate", file=sys.stderr) as bar:
        record = calibrate(args.trials, design, client, progress=bar.update)
    write_calibration(record, hindcast=args.hindcast)
    content = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    write_file(Path(__file__).resolve().parents[1] / "docs" / "calibration.md", markdown(content))
    for row in record["targets"]:
        print(f"{row['target']:<40} published {row['published']:+.4f}  model {row['model']:+.4f}  error {row['error']:+.4f}  I {row['implausibility']:.2f}")
    print("fitted:", record["fitted"], "|", record["posterior_note"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
