"""The kept list of mutations (benchmarks/mutations.toml) still matches the code and names tests that exist.

The mutations themselves run in ``python benchmarks/mutations.py`` (not in CI:
each recompiles the kernels); this only keeps the list from going stale.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("mutations", REPO / "benchmarks" / "mutations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutations"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_every_mutation_matches_its_file_once_and_names_existing_tests():
    mutations = _script().load()  # raises on an original found other than exactly once
    assert len(mutations) >= 20
    for m in mutations:
        for test in m.tests:
            path, _, name = test.partition("::")
            assert (REPO / path).is_file(), (m.name, test)
            if name:
                tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
                defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
                assert name.split("[")[0] in defined, (m.name, test)


def test_a_stale_entry_is_an_error(tmp_path):
    stale = tmp_path / "list.toml"
    stale.write_text("[[mutation]]\nname = 'x'\nfile = 'twin/engine/firms.py'\noriginal = 'no such line'\nreplacement = 'y'\n"
                     "description = 'd'\ntests = ['tests/test_engine.py']\n", encoding="utf-8")
    with pytest.raises(ValueError, match="x: twin/engine/firms.py: the original text occurs 0 times, not once"):
        _script().load(stale)
