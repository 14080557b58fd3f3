"""The command line: argument parsing, and the exit-status contract of DESIGN.md.

Exit 0 when done, 2 with one ``error: <file>: <where>: <what>`` line for bad
input, 1 for anything else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import layers
from layers import InputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_scenario.py",
        description="Load and validate the 中国视谷 layers and print a summary.",
    )
    parser.add_argument("--cell-m", type=float, default=250.0, help="analysis grid cell size in metres (default 250)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        if not args.cell_m > 0:
            raise InputError("--cell-m", "value", f"must be positive, got {args.cell_m:g}")
        stack = layers.load(cell_m=args.cell_m)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(stack.summary())
    return 0
