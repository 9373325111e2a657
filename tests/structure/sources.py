"""The installed packages' source files and the import graph between their modules.

Read from pyproject.toml's package-dir mapping and parsed with ``ast`` (nothing is imported),
so the structure tests see function-local imports too.  Imports under ``if TYPE_CHECKING:``
are left out: they never run, so they cannot form a cycle at import time.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "hgcmlab"
#: The top-level names the packages had before they moved under ``hgcmlab`` (issue 13).
OLD_TOP_LEVEL = ("machine", "devices", "services", "runtime", "guest_asm")


def pyproject() -> dict:
    with (REPO / "pyproject.toml").open("rb") as stream:
        return tomllib.load(stream)


def package_dirs() -> dict[str, Path]:
    """Mapped package name -> its source folder (``hgcmlab.machine`` -> machine/)."""
    mapping = pyproject()["tool"]["setuptools"]["package-dir"]
    return {name: REPO / folder for name, folder in mapping.items()}


@dataclass(frozen=True)
class SourceModule:
    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


@cache
def modules() -> dict[str, SourceModule]:
    """Every module of the installed packages, by its import name."""
    found: dict[str, SourceModule] = {}
    for package, folder in package_dirs().items():
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(folder).with_suffix("")
            if any(not (folder / Path(*relative.parts[:i]) / "__init__.py").exists()
                   for i in range(len(relative.parts))):
                continue  # not inside a package (a script directory)
            parts = [part for part in relative.parts if part != "__init__"]
            name = ".".join([package, *parts])
            found.setdefault(name, SourceModule(name, path))
    return found


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth (function-local ones included)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif _type_checking_only(node):
            yield from runtime_import_nodes(ast.Module(body=node.orelse, type_ignores=[]))
        else:
            yield from runtime_import_nodes(node)


def imported_names(module: SourceModule, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute dotted names one import statement asks for (``from a import b`` -> a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules() else base for alias in node.names]


def _resolve(name: str) -> str | None:
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the project modules it imports at run time."""
    graph = {}
    for name, module in modules().items():
        tree = ast.parse(module.path.read_text(), str(module.path))
        targets = {_resolve(wanted) for node in runtime_import_nodes(tree) for wanted in imported_names(module, node)}
        graph[name] = frozenset(target for target in targets if target and target != name)
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
