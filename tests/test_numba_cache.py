"""Numba's on-disk cache cannot go stale: an edit to a kernel compiled into a caller in another file reaches the caller.

The caller, ``firms._relocating``, inlines ``kernels.keyed_uniform`` (a
different file); numba's own cache checks only the caller's file. The test
works on a temporary copy of the package, so its cache starts empty and the
edit touches nothing of the worktree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, numpy as np
from twin.engine.firms import _relocating
n = 64
out = _relocating(np.ones(n, np.bool_), np.full(n, -1, np.int64), np.arange(n, dtype=np.int64), np.uint64(12345), 0.5)
kernel = _relocating.serial
print(json.dumps({"picked": out.tolist(), "hits": sum(kernel.stats.cache_hits.values()),
                  "misses": sum(kernel.stats.cache_misses.values())}))
"""


def _probe(package: Path) -> dict:
    """Run the caller in a fresh process on the copied package; its picks and whether numba's cache served it."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}  # the cache beside the copy, fresh
    env["PYTHONPATH"] = os.pathsep.join([str(package), str(ROOT)])  # the copy's twin first; layers from the worktree
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=package, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_an_edit_to_an_inlined_kernel_in_another_file_reaches_the_cached_caller(tmp_path):
    shutil.copytree(ROOT / "twin", tmp_path / "twin", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    first = _probe(tmp_path)
    again = _probe(tmp_path)
    assert again == {**first, "hits": 1, "misses": 0}  # the second process loads the caller from the disk cache

    kernels = tmp_path / "twin" / "engine" / "kernels.py"
    source = kernels.read_text(encoding="utf-8")
    old = "    return _uniform(_row_key(key, uid), 0)\n"
    assert source.count(old) == 1
    kernels.write_text(source.replace(old, "    return 1.0 - _uniform(_row_key(key, uid), 0)\n"), encoding="utf-8")

    edited = _probe(tmp_path)
    picked, flipped = np.array(first["picked"]), np.array(edited["picked"])
    assert 0 < picked.sum() < len(picked)  # p = 0.5 picks some firms and not others, so a flip shows
    np.testing.assert_array_equal(flipped, ~picked)  # u -> 1 - u: exactly the other firms
    assert edited["misses"] == 1  # recompiled for the edit, not served from the stale cache
    assert _probe(tmp_path) == {**edited, "hits": 1, "misses": 0}  # and the new code is cached in its turn


def test_every_kernel_goes_through_the_source_keyed_cache():
    """A bare ``njit(cache=True)`` would bring the stale cache back: kernels are made by twin.engine.compiled only."""
    bare = [str(p.relative_to(ROOT)) for p in (ROOT / "twin").rglob("*.py")
            if p.name != "compiled.py" and ("njit" in p.read_text(encoding="utf-8") or "numba import jit" in p.read_text(encoding="utf-8"))]
    assert bare == []
