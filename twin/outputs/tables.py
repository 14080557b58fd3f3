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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection")."""


def write_metrics(table: pd.DataFrame, path: Path) -> None:
    """Tidy CSV, UTF-8 with a BOM so Excel shows the Chinese names; text that would be a formula is neutralised."""
    neutralise_formulas(table).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and column names) starting like a formula get a leading single quote, as OWASP advises.

    A user's zone id such as ``=HYPERLINK(...)`` would otherwise run as a
    formula when a planner opens the CSV in Excel. Numbers are left alone.
    """
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            values = out[column]
            risky = values.str.startswith(FORMULA_STARTS, na=False).astype(bool)
            if risky.any():
                out[column] = values.where(~risky, "'" + values.astype(str))
    out.columns = [f"'{c}" if isinstance(c, str) and c.startswith(FORMULA_STARTS) else c for c in out.columns]
    return out


def write_firms(result: RunResult, path: Path) -> None:
    """GeoParquet of every firm at the kept years, readable by geopandas and QGIS."""
    frames = [snap.firms for snap in result.years if snap.firms is not None]
    firms = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    firms.to_parquet(path, index=False, write_covering_bbox=False)
