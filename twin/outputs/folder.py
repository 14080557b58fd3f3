"""Every file and folder the tool writes is written atomically, and the output folder is the tool's own.

:func:`atomic_file` writes one file under a temporary name beside it, flushes
it to disk and renames it into place (the temporary file is removed when the
write fails); :func:`atomic_folder` does the same for a whole output folder.
Every writer of the project goes through one of the two.

A run writes into ``--out`` only when the folder does not exist, is empty, or
is a previous output of this tool (a ``manifest.json`` whose ``"tool"`` is
:data:`TOOL`) holding nothing but the files that manifest lists (and a study's
``members/`` store). Anything else (a user's folder, a file the user added to
an earlier output, a symbolic link anywhere in it, the working folder or one
above it) is an :class:`layers.InputError` before any work, so nothing a user
owns is ever changed or deleted.

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
import re
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

STORE = "members"
"""A study's member store inside its output folder: carried from one output to the next, for ``--resume``."""

_STORE_FILE = re.compile(r"(batch\d{4}/)?(fingerprint\.json|\.lock|p\d{4}_m\d{6}\.npz|\.[^/]+\.tmp-\d+-\d+(\.\w+)?)")
"""The files the tool writes in its member store (and the temporary names of those a killed run left)."""

_RENAME_EXCHANGE = 2


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends it is flushed to disk and renamed to ``path``.

    Readers see the old file or the new one, never half of one; when the block
    raises, the temporary file is removed and ``path`` is left as it was. The
    temporary name keeps the suffix, so writers that pick a format by it
    (matplotlib, GDAL) still do.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{time.monotonic_ns()}{path.suffix}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write bytes (or text, as UTF-8) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def listed_files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative, '/'-separated, sorted), but the partial marker: what a manifest lists."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != PARTIAL)


def foreign_entries(folder: Path) -> list[str]:
    """What in an earlier output ``folder`` this tool did not write: files its manifest does not list, symbolic
    links, and files in the member store not named like the tool's own. Empty for a folder that is wholly ours."""
    files = (_manifest(folder) or {}).get("files", [])
    listed = {name for name in files if isinstance(name, str)} if isinstance(files, list) else set()
    listed |= {"manifest.json", PARTIAL}
    parents = {parent for name in listed for parent in _parents(name)} | {STORE}
    found = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            in_store = rel.startswith(f"{STORE}/")
            if path.is_symlink():
                found.append(rel)
            elif path.is_dir() and not in_store and rel not in parents:
                found.append(rel + "/")
            elif path.is_file() and rel not in listed and not (in_store and _STORE_FILE.fullmatch(rel[len(STORE) + 1:])):
                found.append(rel)
        dirs[:] = [d for d in dirs if f"{Path(root, d).relative_to(folder).as_posix()}/" not in found]
    return sorted(found)


def _parents(name: str) -> list[str]:
    """The folders a relative file name lies in: ``a/b/c.csv`` gives ``a`` and ``a/b``."""
    parts = name.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _manifest(folder: Path) -> dict | None:
    """``folder/manifest.json`` as an object; None when there is none, or it is not JSON or not an object."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_own_output(folder: Path) -> bool:
    """True when ``folder`` holds a manifest.json written by this tool."""
    return (_manifest(folder) or {}).get("tool") == TOOL


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
    if is_own_output(target) and "files" not in _manifest(target):
        raise InputError("arguments", flag, f"{_short(target)} was written by an earlier version of this tool, whose manifest "
                                            "does not list its files, so a rerun cannot tell them from yours; delete the "
                                            "folder or give another (nothing was changed)")
    foreign = foreign_entries(target) if target.is_dir() else []
    if foreign:
        raise InputError("arguments", flag, f"{_short(target)} holds {_short(Path(foreign[0]), 60)}"
                                            f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, which this tool "
                                            "did not write (or a symbolic link); move it out of the folder or give another "
                                            "folder: a rerun replaces the folder whole (nothing was changed)")
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
def atomic_folder(target: Path, *, allow: tuple[str, ...] = (), carry: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``target`` whole on success and vanishes on failure.

    With ``carry`` the member store of the folder being replaced (``members/``)
    moves into the new output at the swap, so a study's members stay
    resumable; ``allow`` is passed to :func:`check_target`.
    """
    target = check_target(Path(target), allow=allow)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("arguments", "--out", f"cannot create {_short(target.parent)} ({exc.strerror})") from None
    with _locked(target.parent):
        target = check_target(target, allow=allow)  # again, now that no other run can change it
        _clean_leftovers(target)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        try:
            tmp.mkdir()
            (tmp / PARTIAL).touch()
        except OSError as exc:
            raise InputError("arguments", "--out", f"cannot write in {_short(target.parent)} ({exc.strerror})") from None
        try:
            yield tmp
            if not is_own_output(tmp) or foreign_entries(tmp):
                raise RuntimeError(f"the output in {tmp} has no manifest.json of {TOOL} listing every file")
            if carry and (target / STORE).is_dir() and not (tmp / STORE).exists():
                os.rename(target / STORE, tmp / STORE)
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
            if (path / STORE).is_dir() and not (path / STORE).is_symlink() and target.is_dir() and not (target / STORE).exists():
                os.rename(path / STORE, target / STORE)  # members carried by a run killed before its swap go back
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
