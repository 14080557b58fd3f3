"""Command-line entry point: ``python run_scenario.py [SCENARIO] [--out DIR] [--seed N]``."""

import signal
import sys

if __name__ == "__mp_main__":  # imported by multiprocessing in a Dask worker process: Ctrl-C is the parent's to handle
    signal.signal(signal.SIGINT, signal.SIG_IGN)

try:
    from twin.cli import main
except KeyboardInterrupt:  # Ctrl-C while the libraries load, before anything started
    sys.exit("error: interrupted; nothing was run")

if __name__ == "__main__":
    sys.exit(main())
