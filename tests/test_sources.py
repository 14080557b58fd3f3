"""Sources ship with the project: code, data and docs cite docs/sources.md, never files outside the repo.

Issue 16: docs/parameters.md cited "FACTS" and the code cited DESIGN.md, neither of which ships. These
tests read every file in the repository (as git lists it) and fail on such a citation, and on a
``docs/sources.md#anchor`` that docs/sources.md does not define.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "docs" / "sources.md"
TEXT = {".py", ".md", ".yaml", ".yml", ".csv", ".geojson", ".json", ".js", ".html", ".toml", ".txt", ".cfg", ".ini"}

FORBIDDEN = {
    "FACTS": re.compile(r"\bFACTS\b"),
    "DESIGN.md": re.compile(r"DESIGN\.md"),
    # ../shared/data is the build scripts' default folder of raw inputs, not a citation; any other
    # ../shared path, or a document under ../shared/data, is a file outside the repository.
    "../shared": re.compile(r"\.\./shared/(?!data\b)|\.\./shared/data/\S*\.md"),
    # "(seed)" alone names no source; cite docs/sources.md#s-seed or the fact's own anchor.
    "(seed) without an anchor": re.compile(r"(?<![\w.])\(seed[);]|; seed\)"),
}
CITATION = re.compile(r"docs/sources\.md#([A-Za-z0-9_-]+)(?![A-Za-z0-9_<-])")
"""A citation; a template such as ``docs/sources.md#s-anchor-<id>`` is not one."""


def _repo_files() -> list[Path]:
    """Text files git knows about (tracked, or new and not ignored), this test file excepted."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, check=True, text=True).stdout
    files = [ROOT / name for name in out.split("\0") if name]
    return [f for f in files if f.suffix in TEXT and f.is_file() and f.resolve() != Path(__file__).resolve()]


def _anchors() -> set[str]:
    """The anchors docs/sources.md defines: explicit ``<a id=...>`` and its headings' GitHub slugs."""
    text = SOURCES.read_text(encoding="utf-8")
    ids = set(re.findall(r'<a id="([^"]+)"', text))
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    return ids | slugs


def test_the_repo_has_files_to_check():
    files = {f.relative_to(ROOT).as_posix() for f in _repo_files()}
    assert {"docs/parameters.md", "twin/engine/params.py", "scenarios/baseline.yaml", "README.md"} <= files


@pytest.mark.parametrize("name", list(FORBIDDEN))
def test_no_file_cites_outside_the_repo(name):
    pattern = FORBIDDEN[name]
    hits = []
    for path in _repo_files():
        if name.startswith("(seed)") and path == SOURCES:
            continue  # the sources list itself marks the seed article's rows "(seed)" and links S-SEED
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not hits, f"cite docs/sources.md#<anchor> instead of {name}:\n" + "\n".join(hits)


def test_every_cited_anchor_exists():
    anchors = _anchors()
    assert {"s-seed", "s-targets-2027", "s-guishang-844"} <= anchors
    missing = []
    for path in _repo_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            missing += [f"{path.relative_to(ROOT)}:{number}: #{a}" for a in CITATION.findall(line) if a not in anchors]
    assert not missing, "docs/sources.md has no such anchor:\n" + "\n".join(missing)


def test_sources_links_within_itself_resolve():
    anchors = _anchors()
    broken = sorted({a for a in re.findall(r"\]\(#([^)]+)\)", SOURCES.read_text(encoding="utf-8")) if a not in anchors})
    assert not broken, f"docs/sources.md links to anchors it does not define: {broken}"


def test_parameter_docs_cite_sources_by_anchor():
    """Every published figure in the parameter table points into docs/sources.md (the generated docs)."""
    table = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    cited = set(CITATION.findall(table))
    assert {"s-guishang-844", "s-targets-2027"} <= cited
