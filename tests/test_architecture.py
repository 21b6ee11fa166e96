"""The shape of the package: no import cycle, small modules and functions, nothing pointing outside.

The import graph is read with ``ast`` from the source (function-local imports and imports under
``TYPE_CHECKING`` included), so a cycle hidden by a function-local import is still a cycle.
Importing ``prerec.a.b`` from outside package ``prerec.a`` also runs ``prerec/a/__init__.py``,
so that is an edge too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "prerec"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(node: ast.AST, current: str, is_package: bool) -> list[str]:
    """The ``prerec`` modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "prerec"]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = current.split(".")
            anchor = parts if is_package else parts[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        if base.split(".")[0] != "prerec":
            return []
        return [base] + [f"{base}.{a.name}" for a in node.names]
    return []


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            for target in imported(node, name, path.name == "__init__.py"):
                if target not in mods:
                    continue
                graph[name].add(target)
                parts = target.split(".")
                for i in range(2, len(parts)):  # parent packages run first (not the root)
                    parent = ".".join(parts[:i])
                    if not name.startswith(parent + ".") and name != parent:
                        graph[name].add(parent)
        graph[name].discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_hidden_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from prerec.x import y\n")
    found = [t for n in ast.walk(tree) for t in imported(n, "prerec.z", False)]
    assert found == ["prerec.x", "prerec.x.y"]


def test_no_import_cycle_in_src():
    graph = import_graph()
    assert len(graph) > 40 and graph["prerec.intervention"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_modules_and_functions_are_small():
    too_long = []
    for name, path in modules().items():
        lines = path.read_text().count("\n")
        if lines > MAX_MODULE_LINES:
            too_long.append(f"module {name}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    too_long.append(f"function {name}.{node.name}: {n} lines")
    assert not too_long, "\n".join(too_long)


def test_nothing_refers_to_files_outside_the_repository():
    """Method and benchmark definitions are in docs/; only data paths may point outside."""
    pattern = re.compile(r"SPEC\.md|BENCHMARKS\.md|shared/checks|shared/holdout")
    offenders = []
    for path in [*ROOT.glob("src/**/*"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/**/*"),
                 *ROOT.glob("docs/**/*.md"), ROOT / "README.md", *ROOT.glob("src/prerec/configs/**/*.toml")]:
        if path.is_file() and path.suffix in (".py", ".md", ".toml") and path != Path(__file__).resolve():
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not offenders, "\n".join(offenders[:40])
