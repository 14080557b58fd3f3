"""The package layout keeps the data flow visible: imports go one way, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("twin", "layers")
STAGES = ("layers", "twin.engine", "twin.policy", "twin.simulation", "twin.outputs", "twin.studies")
"""Lowest first: a module may import only its own stage and the stages before it."""


def _modules() -> dict[str, Path]:
    """Every module of twin/ and layers/ by dotted name (packages by their __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path], unresolved: list[str] | None = None) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (inside functions too).

    Project imports that name no module are appended to ``unresolved``: an
    import inside a function is not run by importing the module, so a move can
    break it silently.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            if unresolved is not None and base.split(".")[0] in PACKAGES and base not in modules:
                unresolved.append(f"{name}: {base}")
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph as a path that ends where it starts, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_walker_resolves_imports_and_finds_cycles():
    graph = _graph()
    assert "twin.engine.effects" in graph["twin.engine.firms"]  # relative import
    assert "twin.simulation.model" in graph["twin.simulation.run"]
    assert "twin.outputs.maps" in graph["twin.outputs.writer"]  # an import inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_project_import_resolves():
    modules, unresolved = _modules(), []
    for name, path in modules.items():
        _imports(name, path, modules, unresolved)
    assert not unresolved, unresolved


def _stage(name: str) -> int | None:
    matches = [i for i, stage in enumerate(STAGES) if name == stage or name.startswith(stage + ".")]
    return max(matches) if matches else None


def test_lower_stages_never_import_higher_ones():
    wrong = [
        f"{name} imports {target}"
        for name, targets in _graph().items()
        for target in targets
        if _stage(name) is not None and _stage(target) is not None and _stage(target) > _stage(name)
    ]
    assert not wrong, wrong


def test_modules_stay_small():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > 450}
    assert not long, f"modules over 450 lines: {long}"


def test_twin_has_few_top_level_modules():
    top = sorted(p.name for p in (REPO / "twin").glob("*.py"))
    assert len(top) <= 12, top
