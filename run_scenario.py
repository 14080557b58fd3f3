"""Command-line entry point: ``python run_scenario.py [SCENARIO] [--out DIR] [--seed N]``."""

import sys

try:
    from twin.cli import main
except KeyboardInterrupt:  # Ctrl-C while the libraries load, before anything started
    sys.exit("error: interrupted; nothing was run")

if __name__ == "__main__":
    sys.exit(main())
