"""Mutation testing: apply each one-line mutation of a rule to a copy of the repository and run the tests that must kill it.

    python benchmarks/mutations.py                 # every mutation in benchmarks/mutations.toml
    python benchmarks/mutations.py --list          # names, files and descriptions, nothing run
    python benchmarks/mutations.py --only exit-youth-term --only shapley-banzhaf
    python benchmarks/mutations.py --baseline      # first run every named test on the unmutated copy

A test suite that passes whatever a rule says guards nothing. Each entry of
the kept list (``mutations.toml``) names a file, a snippet of one line of it
(found exactly once: a stale entry is an error, not a silent skip), the
text it is replaced by, and the test files or node ids that must fail once
it is. For each mutation the working tree (without ``.git`` and outputs) is
copied into a fresh temporary folder, the snippet replaced there, and
``python -m pytest -x`` run on the named tests with ``PYTHONPATH`` pointing
at the copy and a fresh ``NUMBA_CACHE_DIR``: numba's on-disk cache keeps the
machine code of kernels inlined across files, so a shared cache could run
the unmutated code. A mutation is killed when pytest reports a failure (exit
status 1) or the run times out, survived when the tests pass; anything else
(no such test, a collection error) is an error. Progress goes to stderr; the
table and the score to stdout. Exit status 0 when every mutation is killed,
1 when any survives or errs, 2 when the list is stale. Not run in CI: each
mutation recompiles the kernels it reaches (about a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIST = Path(__file__).with_suffix(".toml")
SKIP = shutil.ignore_patterns(".git", "out", "__pycache__", ".pytest_cache", "*.egg-info", ".ruff_cache")
TIMEOUT_S = 1200


@dataclass(frozen=True)
class Mutation:
    """One entry of the kept list."""

    name: str
    file: str
    original: str
    replacement: str
    description: str
    tests: tuple[str, ...]


def load(path: Path = LIST) -> list[Mutation]:
    """The kept list, every entry checked against the tree: its file exists and its snippet occurs exactly once.

    Raises ``ValueError`` naming every stale or malformed entry.
    """
    entries = tomllib.loads(path.read_text(encoding="utf-8"))["mutation"]
    mutations, problems = [], []
    for i, entry in enumerate(entries):
        try:
            m = Mutation(entry["name"], entry["file"], entry["original"], entry["replacement"], entry["description"], tuple(entry["tests"]))
        except KeyError as missing:
            problems.append(f"entry {i}: no {missing}")
            continue
        source = REPO / m.file
        count = source.read_text(encoding="utf-8").count(m.original) if source.is_file() else -1
        if count != 1:
            found = "no such file" if count < 0 else f"the original text occurs {count} times, not once"
            problems.append(f"{m.name}: {m.file}: {found}")
        if "\n" in m.original or m.original == m.replacement or not m.tests:
            problems.append(f"{m.name}: the original must be one line, differ from the replacement, and name tests")
        mutations.append(m)
    names = [m.name for m in mutations]
    problems += [f"{n}: the name is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise ValueError("; ".join(problems))
    return mutations


def copy_tree(into: Path) -> Path:
    """A copy of the working tree (edits not yet committed included) in ``into``."""
    return Path(shutil.copytree(REPO, into / "repo", ignore=SKIP))


def run_tests(root: Path, tests: tuple[str, ...], scratch: Path) -> tuple[int, str]:
    """pytest's exit status and last lines for ``tests`` in the copy at ``root``, with its own numba cache; -1 on timeout."""
    cache = scratch / "numba_cache"
    cache.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root), "NUMBA_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return done.returncode, tail


def imports_the_copy(root: Path) -> bool:
    """Whether Python started as the tests are imports ``twin`` and ``layers`` from the copy (not an installed checkout)."""
    probe = subprocess.run([sys.executable, "-c", "import twin, layers; print(twin.__file__); print(layers.__file__)"], cwd=root,
                           env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, check=True)
    return all(Path(line).resolve().is_relative_to(root.resolve()) for line in probe.stdout.split())


def verdict(status: int) -> str:
    """What pytest's exit status says of a mutant."""
    return {1: "killed", -1: "killed (timeout)", 0: "SURVIVED"}.get(status, f"ERROR (pytest exit {status})")


def mutate(m: Mutation) -> tuple[str, float, str]:
    """Apply ``m`` to a fresh copy, run its tests there; the verdict, the seconds taken and pytest's last lines."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as scratch:
        root = copy_tree(Path(scratch))
        if not imports_the_copy(root):
            return "ERROR (twin is not imported from the copy)", 0.0, ""
        target = root / m.file
        target.write_text(target.read_text(encoding="utf-8").replace(m.original, m.replacement), encoding="utf-8")
        status, tail = run_tests(root, m.tests, Path(scratch))
    return verdict(status), time.perf_counter() - started, tail


def baseline(mutations: list[Mutation]) -> bool:
    """Whether every named test passes on the unmutated copy (a kill means nothing otherwise)."""
    tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
    print(f"baseline: {len(tests)} test files or ids on the unmutated tree ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="mutant-baseline-") as scratch:
        status, tail = run_tests(copy_tree(Path(scratch)), tests, Path(scratch))
    print(f"baseline: pytest exit {status}\n{tail}", file=sys.stderr, flush=True)
    return status == 0


def main(argv: list[str] | None = None) -> int:
    """Command line: run the list (or ``--only`` some of it) and print each verdict and the score."""
    parser = argparse.ArgumentParser(prog="python benchmarks/mutations.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--baseline", action="store_true", help="first check that every named test passes unmutated")
    args = parser.parse_args(argv)
    try:
        mutations = load()
    except (ValueError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {LIST}: {exc}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in mutations})
        if unknown:
            print(f"error: {LIST}: --only: no mutation named {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name:<28} {m.file:<34} {m.description}")
        return 0
    if args.baseline and not baseline(mutations):
        print("error: the named tests fail on the unmutated tree; fix them first", file=sys.stderr)
        return 1
    results = []
    for i, m in enumerate(mutations, 1):
        print(f"[{i}/{len(mutations)}] {m.name}: {m.file} ...", end=" ", file=sys.stderr, flush=True)
        outcome, seconds, tail = mutate(m)
        print(f"{outcome} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        if not outcome.startswith("killed"):
            print("    " + tail.replace("\n", "\n    "), file=sys.stderr, flush=True)
        results.append((m, outcome))
    killed = sum(outcome.startswith("killed") for _, outcome in results)
    for m, outcome in results:
        print(f"{outcome:<18} {m.name:<28} {m.description}")
    print(f"score: {killed}/{len(results)} killed ({killed / max(len(results), 1):.0%})")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
