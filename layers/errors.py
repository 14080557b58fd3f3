"""The one error type for bad input, shaped for the command line's one-line report."""

from __future__ import annotations

import os


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
