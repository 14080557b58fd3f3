"""What a long job is doing, on stderr: a tqdm bar on a terminal, one plain line per stage in a log.

Every long step reports here and nowhere else: a run's months (:func:`months`), a study's
members (:class:`Members`) and the steps between them, such as writing the outputs or rendering
PNGs in a browser (:func:`stage`). On a terminal the months and members are live bars; when
stderr is not a terminal (a log, a CI job, ``nohup``), tqdm would write one endless line of carriage
returns, so each simulated year, each finished member (at most about :data:`LOG_LINES` lines a study) and
each stage is one line, stamped with the seconds since the job started, so a log shows where a
run is and how long each part took.

The command line turns reporting on for the job (:func:`reporting`); without it (``--quiet``,
library use, inside a Dask worker) every call here is silent, so the writers and studies can
report without a ``quiet`` flag threaded through each signature.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

LOG_LINES = 20
"""About how many lines a bar of members writes to a log (one per member up to this many)."""

_started: ContextVar[float | None] = ContextVar("progress_started", default=None)


@contextlib.contextmanager
def reporting(quiet: bool) -> Iterator[None]:
    """Report the stages of the job run inside (nothing with ``quiet``)."""
    token = _started.set(None if quiet else time.monotonic())
    try:
        yield
    finally:
        _started.reset(token)


def active() -> bool:
    """Whether a job reports its progress here."""
    return _started.get() is not None


def _terminal() -> bool:
    return sys.stderr.isatty()


def stage(text: str) -> None:
    """One line saying what starts now (on a terminal too: it is what follows a finished bar)."""
    started = _started.get()
    if started is not None:
        _print(text, started)


def _print(text: str, started: float) -> None:
    print(f"{time.monotonic() - started:6.0f} s  {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def months(name: str, start: int, end: int) -> Iterator[Callable[[int, int], None] | None]:
    """A callback for ``simulate(progress=...)``: a bar over the months on a terminal, a line per simulated year
    otherwise; None when not reporting. Nothing shows before the first month has run, that is after every
    input check, so bad input stays one ``error:`` line."""
    if not active():
        yield None
        return
    bar, begun = None, False

    def tick(done: int, total: int) -> None:
        nonlocal bar, begun
        if not begun and _terminal():
            from tqdm import tqdm

            bar = tqdm(total=total, desc=name, unit="month", file=sys.stderr)
        elif not begun:
            stage(f"{name}: simulating {start + 1}-{end}")
        begun = True
        if bar is not None:
            bar.update(done - bar.n)
        elif done % 12 == 0:
            stage(f"{name}: {start + done // 12} simulated ({done}/{total} months)")

    try:
        yield tick
    finally:
        if bar is not None:
            bar.close()


class Members:
    """Members done, running and time left: a live tqdm bar on a terminal; in a log, a line per finished member
    (every n-th when there are more than :data:`LOG_LINES`) and one at the end; nothing with ``quiet``."""

    def __init__(self, name: str, total: int, done: int, quiet: bool) -> None:
        self.name, self.total, self.initial, self.quiet = name, total, done, quiet
        self.bar = None
        self.logged = done
        self.started = _started.get() or time.monotonic()

    def start(self) -> None:
        """Open the bar, or write the log's first line (nothing with --quiet)."""
        if self.quiet:
            return
        if not _terminal():
            self._line(f"{self.name}: {self.total} members, {self.initial} already done")
            return
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, initial=self.initial, desc=f"{self.name} members", unit="member", file=sys.stderr)

    def show(self, in_flight: int, threads: int) -> None:
        """Say how many members are running."""
        if self.bar is not None:
            self.bar.set_postfix(running=min(in_flight, threads), refresh=True)

    def update(self, done: int, in_flight: int, threads: int) -> None:
        """Move the bar to ``done`` members."""
        if self.bar is not None:
            self.bar.set_postfix(running=min(in_flight, threads), refresh=False)
            self.bar.update(done - self.bar.n)
        elif not self.quiet and (done - self.logged >= max(1, (self.total - self.initial) // LOG_LINES) or done == self.total):
            self.logged = done
            self._line(f"{self.name}: {done}/{self.total} members done, {min(in_flight, threads)} running")

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _line(self, text: str) -> None:
        _print(text, self.started)
