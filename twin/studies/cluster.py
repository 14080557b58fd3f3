"""The Dask side of a study: a client on a local or existing cluster, and members run a window at a time."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from layers import InputError

from ..policy.scenario import Scenario
from .aggregate import Aggregate
from ..outputs.folder import write_file
from ..outputs.progress import Members
from .members import member_file, read_member, run_member
from .scheduler import probe, scheduler_address
from .seeds import MemberSpec


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client on a new LocalCluster, or on the scheduler given; closed on success and on error.

    A scheduler given is checked by :func:`scheduler.probe` first, without
    unpickling anything, since Dask's client unpickles whatever its peer sends.
    """
    from distributed import Client, LocalCluster, Security
    from distributed.gc import disable_gc_diagnosis

    if scheduler is not None:
        import dask

        address, security = scheduler_address(scheduler), Security()  # TLS from Dask's config: distributed.comm.tls.*
        warning = probe(address, security, SCHEDULER_WAIT_S)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        timeout = dask.config.get("distributed.comm.timeouts.connect")
        try:
            with dask.config.set({"distributed.comm.timeouts.tcp": f"{SCHEDULER_WAIT_S:g}s"}):
                client = Client(address, timeout=timeout, security=security, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError("arguments", "--scheduler", f"cannot reach a Dask scheduler at {address} ({reason})") from None
        try:
            yield client
        finally:
            client.close()
        return
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 turns off glibc's adaptive mmap threshold, so every
    # large numpy array is mmapped and unmapped afresh: members ran 2-3x slower with it. Leave glibc's default.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    if str(environ.get("MALLOC_TRIM_THRESHOLD_")) == "65536":
        del environ["MALLOC_TRIM_THRESHOLD_"]
    # Members run side by side, one a worker: the engine's threaded kernels get the worker's share of the
    # cores, since more threads than cores wait on each other (results do not depend on the thread count).
    environ["NUMBA_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    cluster = None
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}), _interrupt_held() as pressed:
            # TLS with throw-away certificates: any local user can reach a port on 127.0.0.1, and a Dask
            # client that reaches this scheduler (which runs in this process) could run code here. Logs
            # only at CRITICAL: a member's failure comes back as its exception and is reported in one line,
            # and after Ctrl-C the closing cluster logs comms it lost ("failed during get data").
            cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=logging.CRITICAL, security=Security.temporary())
            # The scheduler (in this process) turns on distributed's GC diagnosis: a Ctrl-C that lands in its gc
            # callback is swallowed ("Exception ignored in ... _gc_callback") and the run goes on. It only logs pauses.
            disable_gc_diagnosis(force=True)
            if not pressed:
                _start_workers(cluster, workers)
        if pressed:
            raise KeyboardInterrupt
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _interrupt_held() -> Iterator[list[int]]:
    """Hold Ctrl-C while a LocalCluster starts, and report it after (the caller raises it once it can close the cluster).

    A KeyboardInterrupt inside ``LocalCluster()`` or while its workers start
    leaves a half-started cluster that no one closes: distributed's atexit hook
    then fails on it with a traceback.
    """
    pressed: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda number, frame: pressed.append(number))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _start_workers(cluster, workers: int) -> None:
    """Start the worker processes with SIGINT ignored, which they inherit from their first instruction on.

    Ctrl-C goes to the terminal's whole process group; the workers would each
    print a KeyboardInterrupt traceback, while this process closes them anyway.
    A Python handler is not inherited by a new process, an ignored signal is,
    so SIGINT is ignored here only until the workers are forked (well under a
    second), then given back.
    """
    import psutil

    def spawned() -> set[int]:
        """Worker processes (multiprocessing's spawn_main), not e.g. its resource tracker."""
        found = set()
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if any("spawn_main" in part for part in child.cmdline()):
                    found.add(child.pid)
        return found

    main = threading.current_thread() is threading.main_thread()
    before = spawned()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        cluster.scale(workers)
        deadline = time.monotonic() + SCHEDULER_WAIT_S
        while main and len(spawned() - before) < workers and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    cluster.sync(cluster._correct_state)  # what LocalCluster(n_workers=...) runs: wait for the workers, raise if one fails


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
"""Failures of the disk, not of the input or the model: one ``error:`` line and exit status 1."""

SCHEDULER_WAIT_S = 15.0
"""How long a scheduler may take to answer a connection and a first request before it is called unreachable."""


def run_members(client, specs: list[Scenario], seeds: list[int], todo: list[tuple[int, int]], members_dir: Path,
                 token: str, aggregate: Aggregate, expected: dict[str, Any], progress: Members, member: MemberSpec) -> None:
    """Submit members a window at a time (each with its draws, ``member.run_spec``) and fold each in as it finishes."""
    from distributed import as_completed

    queue = iter(todo)
    completed = as_completed(loop=client.loop)
    state = {"in_flight": 0, "threads": max(1, sum(client.nthreads().values())), "checked": time.monotonic()}

    def window() -> int:
        if time.monotonic() - state["checked"] > 2.0:
            state["threads"] = max(1, sum(client.nthreads().values()))
            state["checked"] = time.monotonic()
        return 2 * state["threads"] + 2

    def top_up() -> None:
        while state["in_flight"] < window():
            item = next(queue, None)
            if item is None:
                return
            p, m = item
            future = client.submit(run_member, member.run_spec(specs[p], seeds[m]), p, m, seeds[m], str(members_dir), token,
                                   key=f"vvt-member-{token[:12]}-p{p}-m{m}", pure=False)
            completed.add(future)
            state["in_flight"] += 1

    top_up()
    progress.show(state["in_flight"], state["threads"])
    for future in completed:
        state["in_flight"] -= 1
        try:
            result = future.result()
        except OSError as exc:
            if exc.errno in DISK_ERRNOS:  # the disk, not the member: the command line says so in one line
                raise
            raise _member_error(future.key, exc) from exc
        except Exception as exc:
            raise _member_error(future.key, exc) from exc
        del future
        p, m = result["point"], result["member"]
        path = member_file(members_dir, p, m)
        payload = result.pop("payload", None)
        if payload is not None:
            write_file(path, payload)
        aggregate.fold(read_member(payload if payload is not None else path, point=p, member=m, seed=seeds[m], **expected))
        del result, payload
        top_up()
        progress.update(aggregate.done, state["in_flight"], state["threads"])


def _member_error(key: str, exc: BaseException) -> RuntimeError:
    """A member failed: say which, and hint at the usual cause on an existing cluster."""
    text = f"{type(exc).__name__}: {exc}"
    hint = ""
    if "No module named 'twin'" in text or "No module named 'layers'" in text:
        hint = " (the Dask workers cannot import this project: install it on them or set PYTHONPATH)"
    return RuntimeError(f"ensemble member {key} failed: {text}{hint}; finished members are kept, rerun with --resume")
