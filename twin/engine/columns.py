"""Agents as columns: a structure of numpy arrays with a live mask.

One ``Columns`` holds one agent type. Births append rows (capacity doubles, so
appends are amortized O(1) per agent); exits clear the ``alive`` flag; when
dead rows pass a quarter of the table, ``compact`` drops them and returns the
old-to-new index map so other tables can re-point their references.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class Columns:
    """A growable table of equally long numpy arrays, one per field."""

    def __init__(self, dtypes: Mapping[str, np.dtype | str], capacity: int = 16) -> None:
        self._dtypes = {name: np.dtype(dt) for name, dt in dtypes.items()}
        self._data = {name: np.zeros(max(capacity, 16), dt) for name, dt in self._dtypes.items()}
        self.alive_all = np.zeros(max(capacity, 16), bool)
        self.n = 0

    def __getattr__(self, name: str) -> np.ndarray:
        """Field arrays, trimmed to the rows in use (views, so writes go through)."""
        data = self.__dict__.get("_data")
        if data is not None and name in data:
            return data[name][: self.n]
        raise AttributeError(name)

    def __setattr__(self, name: str, value) -> None:
        """Assigning a field writes into its array, so ``cols.x *= 2`` stays in place."""
        data = self.__dict__.get("_data")
        if data is not None and name in data:
            data[name][: self.n] = value
        else:
            super().__setattr__(name, value)

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names."""
        return tuple(self._dtypes)

    @property
    def alive(self) -> np.ndarray:
        """Live mask over the rows in use."""
        return self.alive_all[: self.n]

    @property
    def count(self) -> int:
        """Number of live agents."""
        return int(np.count_nonzero(self.alive))

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays, spare capacity included."""
        return sum(a.nbytes for a in self._data.values()) + self.alive_all.nbytes

    def append(self, **values: np.ndarray) -> np.ndarray:
        """Add live rows; fields not given are zero. Returns the new row indices."""
        k = len(next(iter(values.values()))) if values else 0
        unknown = set(values) - set(self._dtypes)
        if unknown:
            raise KeyError(f"unknown field(s) {sorted(unknown)}")
        self._reserve(self.n + k)
        rows = np.arange(self.n, self.n + k)
        for name, array in self._data.items():
            array[self.n : self.n + k] = values[name] if name in values else 0
        self.alive_all[self.n : self.n + k] = True
        self.n += k
        return rows

    def kill(self, rows: np.ndarray) -> None:
        """Mark rows dead."""
        self.alive_all[rows] = False

    def compact(self) -> np.ndarray:
        """Drop dead rows; return the map old row -> new row (-1 for dropped)."""
        keep = self.alive.copy()
        remap = np.full(self.n, -1, np.int64)
        remap[keep] = np.arange(int(keep.sum()))
        for name, array in self._data.items():
            live = array[: self.n][keep]
            array[: len(live)] = live
        self.n = int(keep.sum())
        self.alive_all[: self.n] = True
        self.alive_all[self.n :] = False
        return remap

    def needs_compaction(self) -> bool:
        """True when dead rows make up more than a quarter of the table."""
        return self.n > 1024 and self.count < 0.75 * self.n

    def _reserve(self, size: int) -> None:
        """Grow every array to hold ``size`` rows."""
        capacity = len(self.alive_all)
        if size <= capacity:
            return
        capacity = max(size, 2 * capacity)
        for name, array in self._data.items():
            grown = np.zeros(capacity, array.dtype)
            grown[: self.n] = array[: self.n]
            self._data[name] = grown
        grown = np.zeros(capacity, bool)
        grown[: self.n] = self.alive_all[: self.n]
        self.alive_all = grown

    def copy(self) -> "Columns":
        """A deep copy, for comparisons in tests and for snapshots."""
        other = Columns(self._dtypes, capacity=len(self.alive_all))
        for name, array in self._data.items():
            other._data[name][:] = array
        other.alive_all[:] = self.alive_all
        other.n = self.n
        return other
