"""The one error type for bad input, shaped for the command line's one-line report."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class InputError(ValueError):
    """Bad user input: a file, the place in it, and what is wrong.

    The command line prints ``error: <file>: <where>: <what>`` and exits 2, so
    every check that rejects input raises this and nothing else.
    """

    def __init__(self, file: str | os.PathLike[str], where: str, what: str) -> None:
        self.file = os.fspath(file)
        self.where = where
        self.what = what
        super().__init__(f"{self.file}: {where}: {what}")


def require_file(path: str | os.PathLike[str]) -> Path:
    """Fail fast unless ``path`` is a regular file: opening a FIFO would block and a folder is never a layer."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(path, "file", "not found") from None
    except OSError as exc:
        raise InputError(path, "file", f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe (FIFO)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise InputError(path, "file", f"is {kind}; give the path of a layer file (.gpkg, .geojson, .shp or .tif)")
    return path
