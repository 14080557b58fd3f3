"""The one error type for bad input, shaped for the command line's one-line report, and the one escape
for every value a message echoes."""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNPRINTABLE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
"""Control and format characters, surrogates, unassigned code points and the Unicode line and paragraph
separators: any of them can break a message into lines, colour a terminal or hide text."""


def escape(text: object) -> str:
    """``text`` with every unprintable character written as a visible escape (``\\n``, ``\\x1b``, ``\\u2028``).

    Every value echoed in an ``error:`` or ``warning:`` line passes through here, so a file name, zone id
    or path holding a newline or an escape sequence can neither split the line, forge a second
    ``error:`` line nor colour the terminal.
    """
    return "".join(_escaped(ch) if unicodedata.category(ch) in _UNPRINTABLE else ch for ch in str(text))


def _escaped(ch: str) -> str:
    """One unprintable character as Python writes it in a string literal."""
    code = ord(ch)
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


class InputError(ValueError):
    """Bad user input: a file, the place in it, and what is wrong.

    The command line prints ``error: <file>: <where>: <what>`` and exits 2, so
    every check that rejects input raises this and nothing else. All three
    parts are escaped (:func:`escape`), so the message is always one line.
    """

    def __init__(self, file: str | os.PathLike[str], where: str, what: str) -> None:
        self.file = escape(os.fspath(file))
        self.where = escape(where)
        self.what = escape(what)
        super().__init__(f"{self.file}: {self.where}: {self.what}")


def require_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, refusing a NUL byte or an unpaired surrogate, which no file name can hold (the OS
    would raise ValueError or UnicodeEncodeError)."""
    if "\0" in os.fspath(path):
        raise InputError(path, "file", "the path holds a NUL byte, which no file name can contain")
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise InputError(path, "file", "the path holds an unpaired surrogate (such as \\ud800), which no file name can contain") from None
    return Path(path)


def require_file(path: str | os.PathLike[str]) -> Path:
    """Fail fast unless ``path`` is a regular file: opening a FIFO would block and a folder is never a layer."""
    path = require_path(path)
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
