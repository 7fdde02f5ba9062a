"""The shape of the tree: the layers import downwards only, no module imports itself round a circle, and no
module of the product grows past about 500 lines (NOTES.md, "Layers").

Imports are read from the source with `ast` (every `import`, also inside functions and `if TYPE_CHECKING:`),
so an import that only a type checker or one code path runs still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Top to bottom: a package may import the ones after it, never one before it.
LAYERS = ("deployments", "flows", "tasks", "taskbuilder")
MAX_LINES = 500
# Over MAX_LINES today, each being split by its own issue: remove the entry once it is under.
LINES_ALLOWED: dict[str, int] = {}  # no exception left: every module is within MAX_LINES


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(packages: tuple[str, ...]) -> dict[str, Path]:
    return {_module_name(path): path for package in packages for path in sorted((ROOT / package).rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (a `from package import name` counts as the module `package.name`
    when there is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in {*LAYERS, "sandbox", "prefect"})
    return found


def _graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    modules = _modules(packages)
    known = set(_modules((*LAYERS, "sandbox")))
    return {name: _imports(path, known) for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circle_in_the_product():
    assert _circles(_graph((*LAYERS, "sandbox"))) == []


def test_the_circle_finder_finds_a_circle():
    """The check above could fail: a made-up graph with a circle of three and a self-import is caught."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _circles(graph) == [["a", "b", "c"], ["e"]]


@pytest.mark.parametrize("package", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(package):
    above = set(LAYERS[: LAYERS.index(package)])
    wrong = {(name, target) for name, targets in _graph((package,)).items() for target in targets
             if target.split(".")[0] in above | {"sandbox"}}
    assert wrong == set()


def test_the_core_does_not_import_prefect():
    wrong = {(name, target) for name, targets in _graph(("taskbuilder",)).items() for target in targets
             if target.split(".")[0] == "prefect"}
    assert wrong == set()


def test_the_sandbox_imports_nothing_of_the_product():
    wrong = {(name, target) for name, targets in _graph(("sandbox",)).items() for target in targets
             if target.split(".")[0] in LAYERS}
    assert wrong == set()


def test_the_table_reader_knows_no_checks_and_the_spec_no_payloads():
    """Reading a table and checking it run one way (validation → reader); the spec's models know nothing of
    the API bodies built from them (payloads → spec)."""
    graph = _graph(("taskbuilder",))
    reader = {name for name in graph if name.startswith(("taskbuilder.csv", "taskbuilder.csvfile"))}
    assert reader >= {"taskbuilder.csvfile", "taskbuilder.csv_table", "taskbuilder.csv_fast_path"}
    assert {(name, target) for name in reader for target in graph[name]
            if not target.startswith("taskbuilder.csv")} == set()
    assert {(name, target) for name, targets in graph.items() if name.startswith("taskbuilder.jobspec")
            for target in targets if not target.startswith("taskbuilder.jobspec")} == set()


def test_no_module_of_the_product_is_over_500_lines():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for path in _modules((*LAYERS, "sandbox")).values()}
    over = {path: lines for path, lines in sizes.items() if lines > LINES_ALLOWED.get(path, MAX_LINES)}
    assert over == {}
