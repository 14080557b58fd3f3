"""Compiled kernels (numba) whose on-disk cache cannot go stale.

Numba caches a kernel's machine code beside its file and throws it away
when that file changes, but the machine code also holds every compiled
function the kernel calls from other files: inlined (``inline="always"``)
or not, numba links the callee into the caller. So an edit to
``kernels.keyed_uniform`` left ``firms._relocating`` running the old draw
from the cache (tests/test_numba_cache.py). :func:`kernel` keys each cache
entry also to the source of every file the kernel's compiled callees come
from, transitively, and to the values of the module constants they read
(numba freezes those into the code). Dropping the cross-file calls instead
would mean copies of the keyed-draw code in every file that draws.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import types
from collections.abc import Callable, Iterator

import numpy as np
from numba import njit
from numba.core.caching import FunctionCache
from numba.core.dispatcher import Dispatcher

PARALLEL_FROM = 1 << 15
"""Work items below which a threaded kernel runs on one thread: waking the other
threads costs more than they save (far more on a busy machine, where a
sleeping thread may wait a scheduler tick)."""

CONSTANTS = (bool, int, float, complex, str, bytes, np.generic, np.ndarray)
"""Global values numba compiles in as constants: they are part of the key."""


class SourceKeyedCache(FunctionCache):
    """Numba's cache of one kernel, its entries keyed also to the source it calls into (module docstring)."""

    def _index_key(self, sig, codegen):  # noqa: ANN001, ANN202 (numba's signature)
        return (*super()._index_key(sig, codegen), source_digest(self._py_func))


def kernel(fn: Callable | None = None, **options: object) -> Callable:
    """``numba.njit(cache=True, **options)`` with a :class:`SourceKeyedCache`; use bare or with options."""
    def compile_(f: Callable) -> Dispatcher:
        dispatcher = njit(**options)(f)
        dispatcher._cache = SourceKeyedCache(dispatcher.py_func)  # what Dispatcher.enable_caching does, with our key
        return dispatcher
    return compile_ if fn is None else compile_(fn)


def source_digest(fn: Callable) -> str:
    """SHA-256 over the source files of ``fn`` and of every compiled function it reaches, and the constants they read."""
    files, constants, seen = set(), [], set()
    stack = [fn]
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        files.add(f.__code__.co_filename)
        for value in _globals_read(f):
            if isinstance(value, Dispatcher):
                stack.append(value.py_func)
            elif isinstance(value, CONSTANTS):
                constants.append(value)
    digest = hashlib.sha256(pickle.dumps(constants, protocol=4))
    for name in sorted(files):
        digest.update(_file_digest(name))
    return digest.hexdigest()


def _globals_read(fn: Callable) -> Iterator[object]:
    """The module globals a function's code names, and the attributes it names of modules among them, in name order
    (a set's order changes with each process's string hashing, and the key must not)."""
    names = sorted(set(_names(fn.__code__)))
    for name in names:
        value = fn.__globals__.get(name)
        if isinstance(value, types.ModuleType):
            yield from (getattr(value, attr) for attr in names if hasattr(value, attr))
        elif value is not None:
            yield value


def _names(code: types.CodeType) -> Iterator[str]:
    """Every global or attribute name in a code object and the code objects nested in it."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


@functools.cache
def _file_digest(path: str) -> bytes:
    """A source file's SHA-256 (read once a process)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).digest()


class Threaded:
    """A prange kernel compiled twice, threaded and serial; small inputs go to the serial copy.

    Every output element of these kernels depends on its own inputs only, so
    both copies give the same bytes. The serial copy gets its own qualified
    name because numba's on-disk cache tells functions apart by name, not by
    the parallel flag.
    """

    def __init__(self, fn: Callable, work: Callable[..., int]) -> None:
        serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
        serial.__qualname__ = fn.__qualname__ + "_serial"
        self.threaded, self.serial, self.work = kernel(fn, parallel=True), kernel(serial), work
        functools.update_wrapper(self, fn)

    def __call__(self, *args):  # noqa: ANN002, ANN204 (numba arguments)
        """Run the copy that suits the input's size."""
        return (self.threaded if self.work(*args) >= PARALLEL_FROM else self.serial)(*args)


def threaded(work: Callable[..., int]) -> Callable[[Callable], Threaded]:
    """Decorator making a :class:`Threaded` kernel; ``work(*args)`` counts its work items."""
    return lambda fn: Threaded(fn, work)
