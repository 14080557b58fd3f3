"""Folding members into per-point aggregates in member order, so outputs never depend on finishing order."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..engine.metrics import KEYS
from ..engine.targets import TARGETS_2027
from ..outputs.summary import estimate_note
from ..policy.scenario import Scenario
from .members import Member

PERCENTILES = (5.0, 50.0, 95.0)


class Aggregate:
    """Running aggregates of every point, filled in member order whatever the finishing order.

    Metric values go into one (members x keys) array per point, the 2027
    figures into (members x targets), and firm presence into integer counts
    per point, year and cell, so nothing depends on which member came first.
    """

    def __init__(self, points: int, members: int, years: list[int], shape: tuple[int, int], scales: list[float] | None = None) -> None:
        self.members, self.years, self.shape = members, years, shape
        self.scales = scales or [1.0] * points
        self.cells = shape[0] * shape[1]
        count_type = np.uint16 if members < 2**16 else np.uint32
        self.counts = np.zeros((points, len(years), self.cells), dtype=count_type)
        self.targets = np.full((points, members, len(TARGETS_2027)), np.nan)
        self.target_year: list[int | None] = [None] * points
        self.seen = np.zeros((points, members), dtype=bool)
        self.seconds = np.full((points, members), np.nan)
        self.index: dict[tuple, int] = {}
        self.reference: list[tuple] | None = None
        self.uniform = True  # every member had the same rows in the same order
        self.values: list[np.ndarray | None] = [None] * points

    def fold(self, m: Member) -> None:
        """Add one member; a member already folded in is ignored."""
        if self.seen[m.point, m.member]:
            return
        if self.reference is None:
            self.reference = list(m.keys)
            self.index = {key: i for i, key in enumerate(m.keys)}
        elif m.keys != self.reference:
            self.uniform = False
            for key in m.keys:
                self.index.setdefault(key, len(self.index))
        columns = np.fromiter((self.index[key] for key in m.keys), dtype=np.int64, count=len(m.keys))
        values = self.values[m.point]
        if values is None or values.shape[1] < len(self.index):
            grown = np.full((self.members, len(self.index)), np.nan)
            if values is not None:
                grown[:, : values.shape[1]] = values
            values = self.values[m.point] = grown
        values[m.member, columns] = m.values
        counts = self.counts[m.point]
        for y in range(len(self.years)):
            counts[y] += np.unpackbits(m.grown[y], count=self.cells)
        self.targets[m.point, m.member] = m.targets
        self.target_year[m.point] = m.target_year
        self.seconds[m.point, m.member] = m.seconds
        self.seen[m.point, m.member] = True

    @property
    def done(self) -> int:
        return int(self.seen.sum())

    def key_order(self) -> list[tuple]:
        """Rows in the model's order when all members agree, else sorted, so never in arrival order."""
        keys = list(self.index)
        return keys if self.uniform else sorted(keys)

    def table(self, spec: Scenario, seed: int, points: list[dict[str, Any]]) -> pd.DataFrame:
        """ensemble_metrics.csv: per point and row key, the mean and 5th/50th/95th percentiles."""
        order = self.key_order()
        columns = np.array([self.index[key] for key in order], dtype=np.int64)
        keys = pd.DataFrame(order, columns=list(KEYS))
        frames = []
        for p, point in enumerate(points):
            full = np.full((self.members, len(self.index)), np.nan)
            if self.values[p] is not None:
                full[:, : self.values[p].shape[1]] = self.values[p]
            values = np.nan_to_num(full[:, columns], nan=0.0)  # a row a member lacks counts as 0, as in comparisons
            low, mid, high = np.percentile(values, PERCENTILES, axis=0)
            frame = pd.DataFrame({"scenario": spec.name, "seed": seed, "members": self.members}, index=keys.index)
            for name, value in point.items():
                frame[name] = value
            frame = pd.concat([frame, keys], axis=1)
            frame["mean"], frame["p5"], frame["p50"], frame["p95"] = values.mean(axis=0), low, mid, high
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def probability(self, p: int) -> dict[str, np.ndarray]:
        """Per year, the share of members in which a cell's revenue exceeds its base-year revenue: P(growth).

        The base year's grid is zero by definition."""
        return {str(year): (self.counts[p, y].astype(np.float32) / np.float32(self.members)).reshape(self.shape)
                for y, year in enumerate(self.years)}

    def target_report(self, p: int) -> dict[str, Any]:
        """The point's chances against the 2027 targets."""
        values = self.targets[p]
        report: dict[str, Any] = {}
        if self.target_year[p] is None:
            return {"year": None, "note": "the scenario starts after 2027; the 2027 targets do not apply"}
        scale = self.scales[p]
        met_all = np.ones(self.members, dtype=bool)
        for t, (metric, (target, label)) in enumerate(TARGETS_2027.items()):
            met = values[:, t] >= target
            met_all &= met
            low, mid, high = np.percentile(values[:, t], PERCENTILES)
            report[metric] = {
                "label": label, "target": target, "met": int(met.sum()), "members": self.members,
                "probability": float(met.mean()), "probability_ci90": wilson(int(met.sum()), self.members),
                "value_mean": float(values[:, t].mean()), "value_p5": float(low), "value_p50": float(mid), "value_p95": float(high),
            }
        report["all"] = {"label": "all three 2027 targets", "met": int(met_all.sum()), "members": self.members,
                         "probability": float(met_all.mean()), "probability_ci90": wilson(int(met_all.sum()), self.members)}
        out: dict[str, Any] = {"year": self.target_year[p], "targets": report}
        if scale < 1:
            out["note"] = estimate_note(scale)
        return out


def wilson(k: int, n: int, z: float = 1.6448536269514722) -> list[float]:
    """Wilson score interval (90% by default) for k successes in n trials."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]
