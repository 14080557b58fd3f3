"""Rules of the outputs by value: which CSV text is neutralised, the sign of a comparison, when a target counts as met."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from twin.outputs.tables import comparison_table, neutralise_formulas
from twin.studies.coalitions import Panel
from twin.studies.seek import score


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_text_starting_like_a_formula_gets_a_quote_and_nothing_else_does(start):
    """Cells and column names that a spreadsheet would run as a formula get a leading ', other text and numbers are kept."""
    table = pd.DataFrame({f"{start}col": [f"{start}1+1", "zone a", "a=b"], "value": [-3.0, 1.0, 2.0]})
    out = neutralise_formulas(table)
    assert out.columns.tolist() == [f"'{start}col", "value"]
    assert out.iloc[:, 0].tolist() == [f"'{start}1+1", "zone a", "a=b"]
    assert out["value"].tolist() == [-3.0, 1.0, 2.0]


def _run(values: list[float]) -> SimpleNamespace:
    """A stand-in for a RunResult: its tidy metrics, one city row a year."""
    keys = {"scenario": "s", "seed": 1, "level": "city", "metric": "revenue_cny", "zone": "", "district": "", "track": "", "lever": ""}
    return SimpleNamespace(metrics=pd.DataFrame([{**keys, "year": 2024 + i, "value": v} for i, v in enumerate(values)]))


def test_a_comparison_is_b_minus_a_paired_by_seed():
    table = comparison_table([_run([10.0, 20.0]), _run([30.0, 40.0])], [_run([13.0, 26.0]), _run([31.0, 44.0])])
    assert table["difference"].tolist() == [2.0, 5.0]  # (3 + 1) / 2 and (6 + 4) / 2
    assert table["mean_a"].tolist() == [20.0, 30.0] and table["mean_b"].tolist() == [22.0, 35.0]


def test_a_figure_exactly_at_its_target_meets_it():
    """Goal seeking counts a member whose figure equals the target as meeting it (the plan says "at least")."""
    targets = np.array([1e12, 4e11, 2.0])
    panel = Panel(1, 4)
    panel.values = [[{}] * 4]
    panel.targets[0] = [targets, targets * 1.1, targets * (1 - 1e-12), [1e12, 4e11, 1.0]]
    row = score(panel, 0, targets, 2027)
    assert row["p_all_targets"] == 0.5 and row["p_leaders_100bn"] == 0.5 and row["p_revenue_cny"] == 0.75 and row["cost_cny"] == 0.0
