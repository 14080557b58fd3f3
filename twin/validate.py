"""``python -m twin.validate [--seeds N] [--scale s] [--out docs/validation.csv]``: hindcast 2020→2023 against published figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .outputs.tables import write_csv
from .studies.validation import LEADER_RANGE, leader_growth, validate

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "validation.csv"


def main(argv: list[str] | None = None) -> int:
    """Print the model-vs-published table and write it as CSV; exit 1 when an error exceeds its bound."""
    parser = argparse.ArgumentParser(prog="python -m twin.validate", description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="seeds (default 5)")
    parser.add_argument("--scale", type=float, default=1.0, help="population scale (default 1, as the calibration; anchors on)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV written (default docs/validation.csv)")
    args = parser.parse_args(argv)
    if not args.out.parent.is_dir() or args.out.is_dir():  # checked before the runs, not after them
        print(f"error: {args.out}: not a file in an existing folder", file=sys.stderr)
        return 2
    table = validate(list(range(1, args.seeds + 1)), args.scale)
    write_csv(table.round({"model": 0, "model_sd": 0, "rel_error": 4}), args.out)
    print(f"hindcast 2020->2023, scale {args.scale:g}, seeds 1..{args.seeds}, parameters fitted to <=2020 {table.attrs['params']}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    growth = leader_growth(list(range(1, args.seeds + 1)), args.scale)
    mean = sum(growth) / len(growth)
    ok = all(LEADER_RANGE[0] <= g <= LEADER_RANGE[1] for g in growth)
    print(f"baseline 海康威视 2023->2024 growth, seeds 1..{args.seeds}: {', '.join(f'{g:+.1%}' for g in growth)}; "
          f"mean {mean:+.1%} ({'every seed within' if ok else 'a seed outside'} {LEADER_RANGE[0]:+.0%}..{LEADER_RANGE[1]:+.0%})")
    return 0 if table["within"].all() and ok else 1


if __name__ == "__main__":
    sys.exit(main())
