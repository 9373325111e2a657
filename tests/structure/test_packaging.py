"""What installing hgcmlab puts on a user's path, and the public API (issue 13, problem 6).

Only ``hgcmlab`` is installed at top level (no ``machine``, ``devices``, ... to collide with
a user's own modules); every source package is in pyproject's package list; entry points
name ``hgcmlab.*`` modules; ``hgcmlab`` exports a small documented API, lazily.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hgcmlab
from tests.structure.sources import NAMESPACE, REPO, modules, package_dirs, pyproject


def _build_package_tree(tmp_path: Path) -> Path:
    """Lay out the installed package tree as a wheel would contain it (setuptools' build_py,
    run on a copy of the project so that the checkout stays clean)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    for folder in package_dirs().values():
        shutil.copytree(folder, project / folder.relative_to(REPO),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "lib"
    done = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                           "egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib", str(out)],
                          cwd=project, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    return out


def test_only_hgcmlab_is_installed_at_top_level(tmp_path: Path) -> None:
    tree = _build_package_tree(tmp_path)
    assert sorted(entry.name for entry in tree.iterdir()) == [NAMESPACE]
    # The mapped folders land beneath it, with their data files.
    assert (tree / NAMESPACE / "machine" / "cli.py").is_file()
    assert (tree / NAMESPACE / "devices" / "vmmdev" / "abi.py").is_file()
    assert (tree / NAMESPACE / "guest_asm" / "lib" / "hgcm.s").is_file()
    # The native accelerator's source, compiled on the user's machine (devices/vmmdev/accel.py).
    assert (tree / NAMESPACE / "devices" / "vmmdev" / "native" / "hgcm_accel.c").is_file()
    assert sorted((tree / NAMESPACE / "guest_asm" / "programs").glob("*.s"))


def test_every_source_package_is_in_the_package_list() -> None:
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    packages = {name for name, module in modules().items() if module.is_package}
    assert packages == listed


def _defines(module_name: str, attribute: str) -> bool:
    tree = ast.parse(modules()[module_name].path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return attribute in names


def test_entry_points_name_hgcmlab_modules() -> None:
    project = pyproject()["project"]
    targets = list(project["scripts"].values())
    for group in project["entry-points"].values():
        targets += list(group.values())
    assert len(targets) >= 5
    for target in targets:
        module_name, _, attribute = target.partition(":")
        assert module_name.startswith(f"{NAMESPACE}."), target
        assert module_name in modules(), target
        assert not attribute or _defines(module_name, attribute), target


def test_python_dash_m_hgcmlab_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", NAMESPACE, "--version"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("hgcmlab ")


def test_public_api_names_exist_where_declared() -> None:
    exports = hgcmlab._EXPORTS
    assert sorted(hgcmlab.__all__) == sorted(exports)
    for name, module_name in exports.items():
        value = getattr(hgcmlab, name)
        assert value.__module__ == module_name, name
        assert value.__doc__, f"{name} has no docstring"


def test_public_api_is_documented() -> None:
    design = (REPO / "docs" / "design.md").read_text()
    section = design[design.index("## Namespace and public API"):]
    for name in hgcmlab.__all__:
        assert f"`{name}`" in hgcmlab.__doc__, name
        assert f"`{name}`" in section, name


def test_other_names_are_not_attributes() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Cpu'"):
        getattr(hgcmlab, "Cpu")


def test_importing_a_module_does_not_load_the_public_api() -> None:
    """The console command imports its entry module first and catches Ctrl-C afterwards."""
    code = "import sys, hgcmlab.machine.entry; print(sorted(m for m in sys.modules if m.split('.')[0] in ('unicorn', 'capstone')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
