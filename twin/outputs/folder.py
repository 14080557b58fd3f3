"""The output folder is the tool's own: checked, locked, written whole aside and swapped into place.

A run writes into ``--out`` only when the folder does not exist, is empty, or
is a previous output of this tool (a ``manifest.json`` whose ``"tool"`` is
:data:`TOOL`). Anything else (a user's folder, a file, a symbolic link, the
working folder or one above it) is an :class:`layers.InputError`, so nothing a
user owns is ever changed or deleted.

The new output is written into a hidden sibling ``.NAME.tmp-PID`` that holds
:data:`PARTIAL` until it is complete, then exchanged with the old output in one
``renameat2(RENAME_EXCHANGE)`` call, so ``NAME`` is the old or the new output at
every instant, never missing and never half-written. Every write happens under
an exclusive ``flock`` on the parent folder, so two runs never touch each
other's temporary folders, and the leftovers of a run killed outright (hidden
siblings named after ``NAME`` *and* holding :data:`PARTIAL` or this tool's
manifest) are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from layers import InputError

TOOL = "vision-valley-twin"
"""The manifest's ``"tool"`` value that marks a folder as this tool's output."""

PARTIAL = ".vision-valley-twin-partial"
"""A file inside a temporary output folder while it is being written."""

LOCK_WAIT_S = 120.0
"""How long a run waits for another run writing beside it before giving up with an error."""

_RENAME_EXCHANGE = 2


def is_own_output(folder: Path) -> bool:
    """True when ``folder`` holds a manifest.json written by this tool."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("tool") == TOOL


def check_target(target: Path, *, flag: str = "--out", allow: tuple[str, ...] = ()) -> Path:
    """Refuse an output path that is not this tool's to write; return it made absolute.

    ``allow`` names entries (e.g. an ensemble's ``members``) that make a folder
    this tool's even without a manifest, for resuming an interrupted run.
    """
    if not str(target).strip():
        raise InputError("arguments", flag, "is empty; give a folder name")
    target = Path(os.path.abspath(target))
    if target.is_symlink():
        raise InputError("arguments", flag, f"{_short(target)} is a symbolic link; give a real folder")
    cwd = Path.cwd().resolve()
    if target == target.parent or target == cwd or target in cwd.parents or target == Path.home().resolve():
        raise InputError("arguments", flag, f"{_short(target)} is the working, home or root folder or one above it; give a new folder")
    if target.exists() and not target.is_dir():
        raise InputError("arguments", flag, f"{_short(target)} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not is_own_output(target) and not any((target / a).exists() for a in allow):
        raise InputError("arguments", flag, f"{_short(target)} holds files that are not an output of this tool; "
                                            "give a new or empty folder (nothing was changed)")
    parent = _existing_ancestor(target.parent)
    if not _writable(parent) or (target.is_dir() and not _writable(target)):
        raise InputError("arguments", flag, f"{_short(target)} is read-only or in a read-only folder")
    return target


def _writable(folder: Path) -> bool:
    """Whether a folder can be created in ``folder``, by trying (os.access says yes to root on read-only mounts)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vision-valley-twin-probe-", dir=folder))
    except OSError:
        return False
    return True


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` whole on success and vanishes on failure."""
    target = check_target(Path(target))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("arguments", "--out", f"cannot create {_short(target.parent)} ({exc.strerror})") from None
    with _locked(target.parent):
        target = check_target(target)  # again, now that no other run can change it
        _clean_leftovers(target)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        try:
            tmp.mkdir()
            (tmp / PARTIAL).touch()
        except OSError as exc:
            raise InputError("arguments", "--out", f"cannot write in {_short(target.parent)} ({exc.strerror})") from None
        try:
            yield tmp
            if not is_own_output(tmp):
                raise RuntimeError(f"the output in {tmp} has no manifest.json of {TOOL}")
            (tmp / PARTIAL).unlink()
            _swap_in(tmp, target)
        finally:
            if tmp.is_dir() and ((tmp / PARTIAL).exists() or is_own_output(tmp)):
                shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target``; an old output (or empty folder) there goes in one atomic exchange."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        old = tmp  # the exchange left the old output at the temporary name
    else:  # no renameat2 here (not Linux, or the file system lacks it): two renames, old kept until the second
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, old)
        os.rename(tmp, target)
    if is_own_output(old):
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rmdir(old)  # it was checked empty; never delete a folder that is not ours


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2; False when the call is not available."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    call = getattr(libc, "renameat2", None)
    if call is None:
        return False
    at_fdcwd = -100
    if call(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _clean_leftovers(target: Path) -> None:
    """Remove what runs killed outright left beside ``target``: named after it and marked as ours.

    Called under the parent folder's lock, so no live run owns any of them. An
    old output hidden by a run killed between its two renames goes back in place.
    """
    for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.*-*")):
        kind = path.name[len(target.name) + 2:].split("-", 1)[0]
        if kind not in ("tmp", "old") or path.is_symlink() or not path.is_dir():
            continue
        if kind == "old" and not target.exists() and is_own_output(path):
            os.rename(path, target)
        elif (path / PARTIAL).exists() or is_own_output(path):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` itself (no lock file is left behind), waiting up to LOCK_WAIT_S."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InputError("arguments", "--out", f"another run has been writing in {_short(folder)} "
                                                          f"for over {LOCK_WAIT_S:.0f} s; try again later") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder at or above ``path`` that exists (where a new output folder would be created)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _short(path: Path, limit: int = 120) -> str:
    """A path for a one-line message, cut in the middle when very long."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"
