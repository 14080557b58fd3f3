"""``python -m twin.sensitivity [--trajectories r] [--scale s] [--workers w]``: Morris screening of the 2027 headline figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .outputs.tables import write_csv
from .studies.cluster import dask_client
from .studies.sensitivity import FACTORS, chart, morris

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main(argv: list[str] | None = None) -> int:
    """Run the screening on Dask; write docs/sensitivity.csv and docs/sensitivity.png; print the ranking."""
    parser = argparse.ArgumentParser(prog="python -m twin.sensitivity", description=__doc__)
    parser.add_argument("--trajectories", type=int, default=6, help="Morris trajectories (runs = r x (k+1); default 6)")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale (default 1, as the calibration; anchors on)")
    parser.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for sensitivity.csv and .png (default docs/)")
    args = parser.parse_args(argv)
    if args.trajectories < 2:
        print("error: --trajectories: Morris needs at least 2", file=sys.stderr)
        return 2
    try:  # before the runs, not after: a bad folder must not cost the whole screening
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: {args.out}: cannot write there ({exc.strerror})", file=sys.stderr)
        return 2
    from tqdm import tqdm

    runs = args.trajectories * (len(FACTORS) + 1)
    with dask_client(args.workers, None) as client, tqdm(total=runs, desc="morris", unit="run", file=sys.stderr) as bar:
        table = morris(client, args.trajectories, args.scale, progress=bar.update)
    write_csv(table.round(6), args.out / "sensitivity.csv")
    chart(table, args.out / "sensitivity.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
