"""Command-line entry point: ``python run_scenario.py [SCENARIO] [--out DIR] [--seed N]``."""

import sys

from twin.cli import main

if __name__ == "__main__":
    sys.exit(main())
