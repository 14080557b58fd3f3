"""Tables a planner opens in Excel or pandas: tidy metrics, comparisons and the firms' GeoParquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.metrics import KEYS
from ..simulation.run import RunResult
from .folder import atomic_file


def comparison_table(a: list[RunResult], b: list[RunResult]) -> pd.DataFrame:
    """Per metric row: both scenarios' means, the mean paired difference B − A and its 90 % t interval.

    ``a[i]`` and ``b[i]`` ran on the same seed; a row one run lacks counts as
    0 (a lever only one scenario has spends nothing in the other). With one
    pair the interval is empty (NaN).
    """
    keys = list(KEYS)
    frames = [
        ra.metrics[keys + ["value"]].merge(rb.metrics[keys + ["value"]], on=keys, how="outer", suffixes=("_a", "_b")).fillna({"value_a": 0.0, "value_b": 0.0}).assign(pair=i)
        for i, (ra, rb) in enumerate(zip(a, b, strict=True))
    ]
    pairs = pd.concat(frames, ignore_index=True)
    pairs["difference"] = pairs["value_b"] - pairs["value_a"]
    table = pairs.groupby(keys, sort=True, dropna=False).agg(
        mean_a=("value_a", "mean"), mean_b=("value_b", "mean"), difference=("difference", "mean"), sd=("difference", "std"), n=("pair", "count")
    ).reset_index()
    half = stats.t.ppf(0.95, np.maximum(table["n"] - 1, 1)) * table["sd"] / np.sqrt(table["n"])
    half = half.where(table["n"] > 1)
    table["ci90_low"], table["ci90_high"] = table["difference"] - half, table["difference"] + half
    return table.drop(columns="sd")[keys + ["mean_a", "mean_b", "difference", "ci90_low", "ci90_high", "n"]]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection")."""


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """The one CSV writer of the tool: UTF-8 with a BOM so Excel shows the Chinese names, text that would be a
    formula neutralised, the ``value`` column as plain numbers, written atomically."""
    with atomic_file(path) as tmp:
        plain_values(neutralise_formulas(table)).to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")


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
    with atomic_file(path) as tmp:
        firms.to_parquet(tmp, index=False, write_covering_bbox=False)
