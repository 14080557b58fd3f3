"""Command-line entry point: ``python run_scenario.py [SCENARIO] [--out DIR] [--seed N]``."""

import signal
import sys

if __name__ == "__mp_main__":  # imported by multiprocessing in a Dask worker process: Ctrl-C is the parent's to handle
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from twin.cli import main  # noqa: E402 (after the line above, so a worker ignores Ctrl-C from its first moment)

if __name__ == "__main__":
    sys.exit(main())
