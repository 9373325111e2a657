"""The import structure (issue 13, problems 3 and 6), checked on the source with ``ast``.

* No import cycle between modules, function-local imports included.
* Guest assembly imports only import-free constant modules (it does not depend on the
  machine, whose implementation imports the assembler).
* Nothing imports the old top-level names (machine, devices, services, runtime, guest_asm).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from tests.structure.sources import (NAMESPACE, OLD_TOP_LEVEL, REPO, cycles, import_graph, modules,
                                     runtime_import_nodes)

#: Modules that hold guest-visible numbers and import nothing of the project but each
#: other: the only ones guest assembly may import from outside its own package.
IMPORT_FREE = frozenset({
    "hgcmlab.machine.layout",
    "hgcmlab.machine.pci_regs",
    "hgcmlab.machine.paging_regs",
    "hgcmlab.devices.vmmdev.abi",
    "hgcmlab.services.sharedfolders.abi",
    "hgcmlab.services.guestprops.abi",
    "hgcmlab.runtime.status",
    "hgcmlab.runtime.fsmode",
    "hgcmlab.runtime.wire",
})

_SKIPPED_DIRS = {".git", "__pycache__", "build", "dist", ".venv", "venv", ".pytest_cache", ".hypothesis"}


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert cycles(graph) == [["a", "b", "c"]]


def test_function_local_imports_are_in_the_graph() -> None:
    # machine/cli.py imports hgcmlab.machine.programs inside a function only.
    assert "hgcmlab.machine.programs" in import_graph()["hgcmlab.machine.cli"]


def test_guest_asm_imports_only_import_free_modules() -> None:
    outside = {(name, target) for name, targets in import_graph().items()
               if name.startswith(f"{NAMESPACE}.guest_asm") for target in targets
               if not target.startswith(f"{NAMESPACE}.guest_asm")}
    assert {target for _name, target in outside} <= IMPORT_FREE, sorted(outside)


def test_import_free_modules_import_only_the_standard_library_and_each_other() -> None:
    for name in sorted(IMPORT_FREE):
        module = modules()[name]
        assert import_graph()[name] <= IMPORT_FREE, name
        tree = ast.parse(module.path.read_text())
        for node in runtime_import_nodes(tree):
            wanted = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for dotted in wanted:
                top = dotted.split(".")[0]
                assert top in sys.stdlib_module_names or top == NAMESPACE, f"{name} imports {dotted}"


def test_importing_the_assembler_loads_no_machine_implementation() -> None:
    """What the import graph says, observed: the assembler's whole import closure."""
    code = ("import sys, hgcmlab.guest_asm.assembler; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('hgcmlab.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    loaded = set(done.stdout.split())
    outside = {name for name in loaded if not name.startswith(f"{NAMESPACE}.guest_asm")}
    parents = {name.rsplit(".", depth)[0] for name in IMPORT_FREE for depth in range(1, name.count("."))}
    assert outside <= IMPORT_FREE | parents, sorted(outside - IMPORT_FREE - parents)
    assert "unicorn" not in done.stdout


def _python_files() -> list:
    found = []
    for directory, subdirs, files in os.walk(REPO):
        subdirs[:] = [d for d in subdirs if d not in _SKIPPED_DIRS and not d.endswith(".egg-info")]
        found.extend(os.path.join(directory, name) for name in files if name.endswith(".py"))
    return sorted(found)


def test_nothing_imports_the_old_top_level_names() -> None:
    offenders = []
    for path in _python_files():
        with open(path, encoding="utf-8") as stream:
            tree = ast.parse(stream.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{os.path.relpath(path, REPO)}:{node.lineno}: {name}" for name in names
                          if name.split(".")[0] in OLD_TOP_LEVEL]
    assert offenders == []
