"""The import graph: no cycles between the project's modules, and the product never imports the harness.

Every ``import`` counts, also one inside a function: a lazy import hides a cycle, it does not
remove it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = {
    "incidents": REPO / "include" / "incidents",
    "incidents_dev": REPO / "include" / "incidents_dev",
    "incidents_provider": REPO / "plugins" / "incidents_provider",
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, root in ROOTS.items():
        for path in root.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (``a.b.c`` -> longest known prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
        for name in names:
            target = _resolve(name)
            if target and target != module and not module.startswith(target + "."):
                out.add(target)
    return out


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return result


def test_the_graph_is_read() -> None:
    assert "incidents.cli" in GRAPH and "incidents_dev.cli" in GRAPH
    assert "incidents.cli" in GRAPH["incidents_dev.cli"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("incidents.")))
def test_the_product_never_imports_the_harness(module: str) -> None:
    assert not [t for t in GRAPH[module] if t.startswith("incidents_dev")]


def test_the_provider_never_imports_the_harness() -> None:
    imported = [t for m, ts in GRAPH.items() if m.startswith("incidents_provider") for t in ts]
    assert imported and not [t for t in imported if t.startswith("incidents_dev")]
