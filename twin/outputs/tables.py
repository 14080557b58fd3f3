"""Tables a planner opens in Excel or pandas: tidy metrics, comparisons and the firms' GeoParquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.metrics import KEYS
from ..simulation.run import RunResult


def comparison_table(result: RunResult, other: RunResult) -> pd.DataFrame:
    """Per year, metric and breakdown: both values, the difference and the relative difference."""
    keys = list(KEYS)
    a = result.metrics[keys + ["value"]].rename(columns={"value": result.scenario.name})
    b = other.metrics[keys + ["value"]].rename(columns={"value": other.scenario.name})
    if result.scenario.name == other.scenario.name:
        b = b.rename(columns={other.scenario.name: f"{other.scenario.name}_other"})
    table = a.merge(b, on=keys, how="outer").fillna({a.columns[-1]: 0.0, b.columns[-1]: 0.0})
    first, second = table.columns[-2], table.columns[-1]
    table["difference"] = table[first] - table[second]
    table["relative_difference"] = np.divide(table["difference"], table[second].abs(), out=np.full(len(table), np.nan), where=table[second] != 0)
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def write_metrics(table: pd.DataFrame, path: Path) -> None:
    """Tidy CSV, UTF-8 with a BOM so Excel shows the Chinese names."""
    table = plain_values(table)
    table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


def plain_values(table: pd.DataFrame) -> pd.DataFrame:
    """The ``value`` column as text: whole numbers without a trailing ``.0``, so 338800000000 reads as
    whole yuan in Excel, and other values as their shortest exact form (e.g. 5000.5 PFLOPS)."""
    if "value" not in table.columns:
        return table
    values = table["value"].astype(float)
    whole = np.isfinite(values) & (values == values.round())
    text = values.map(repr).where(~whole, values.where(whole, 0).astype(np.int64).astype(str))
    return table.assign(value=text.where(values.notna(), ""))


def write_firms(result: RunResult, path: Path) -> None:
    """GeoParquet of every firm at the kept years, readable by geopandas and QGIS."""
    frames = [snap.firms for snap in result.years if snap.firms is not None]
    firms = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    firms.to_parquet(path, index=False, write_covering_bbox=False)
