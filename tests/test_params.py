"""Parameters: documented, range-checked, and the docs table is generated from the code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from twin.engine.params import TRACK_COMPUTE_INTENSITY, TRACK_FIRM_SHARES, TRACK_IDS, Params, markdown_table

DOCS = Path(__file__).resolve().parent.parent / "docs" / "parameters.md"


def test_parameter_docs_match_the_code():
    assert DOCS.read_text(encoding="utf-8") == markdown_table(), "run: python -m twin.engine.params > docs/parameters.md"


def test_every_parameter_has_a_source_or_reasoning_and_a_valid_default():
    for f in dataclasses.fields(Params):
        assert f.metadata["doc"] and f.metadata["unit"], f.name
        assert f.metadata["lo"] <= f.default <= f.metadata["hi"], f.name
    Params()  # the defaults pass their own validation


def test_track_tables_cover_every_track():
    assert set(TRACK_FIRM_SHARES) == set(TRACK_IDS) == set(TRACK_COMPUTE_INTENSITY)
    assert abs(sum(TRACK_FIRM_SHARES.values()) - 1.0) < 1e-9
