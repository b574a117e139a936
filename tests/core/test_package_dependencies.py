"""Packages import each other only as declared: Home Assistant's dependency checker, for civicsense.

Every `.py` file of every package is parsed with `ast` (nothing is imported). An absolute
import of another package is allowed only when that package is in the importer's
`depends_on` and the imported module lies within one of the target's `exports`. `core`
is the shared base: every domain package depends on it and may import any of it, and it
imports no domain package (the registry names them in strings, which are not imports).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.registry import INSTALLED, Module

ROOT = Path(__file__).parents[2]
DOMAIN_FOLDERS = ("parking", "alerts", "catalog", "dashboard")


def _packages() -> tuple[str, ...]:
    """INSTALLED, plus the domain folders that already hold a module.py."""
    extra = tuple(
        name
        for name in DOMAIN_FOLDERS
        if name not in INSTALLED and (ROOT / name / "module.py").exists()
    )
    return (*INSTALLED, *extra)


PACKAGES = _packages()


def _module(package: str) -> Module:
    return importlib.import_module(f"{package}.module").MODULE


@dataclass(frozen=True)
class Import:
    """One absolute import of another top-level package."""

    file: Path
    line: int
    module: str  # the imported module, e.g. "devices.codecs" or "devices.codecs.base"

    @property
    def package(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: imports {self.module}"


def _imports(package: str) -> Iterator[Import]:
    """Every absolute import in `package` of another watched package."""
    for path in sorted((ROOT / package).rglob("*.py")):
        yield from _imports_in(path, path.read_text(encoding="utf-8"), package)


def _imports_in(path: Path, source: str, package: str) -> Iterator[Import]:
    """The imports of other packages in one file's `source`."""
    watched = set(PACKAGES) | set(DOMAIN_FOLDERS) | {"core"}
    for node in ast.walk(ast.parse(source, filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from devices import codecs` imports devices.codecs when it is a module
            names = [
                _from_target(node.module, alias.name) for alias in node.names if alias.name != "*"
            ] or [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in watched and top != package:
                yield Import(path, node.lineno, name)


def _from_target(module: str, name: str) -> str:
    """`from module import name`: module.name when that is a module, else module."""
    candidate = f"{module}.{name}"
    parts = candidate.split(".")
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").exists() or (base / "__init__.py").exists():
        return candidate
    return module


def _within(module: str, exports: tuple[str, ...]) -> bool:
    return any(module == e or module.startswith(e + ".") for e in exports)


def _violations(package: str) -> list[str]:
    declared = _module(package)
    problems = []
    for found in _imports(package):
        target = found.package
        if target not in PACKAGES:
            problems.append(f"{found} — {target!r} is not an installed package")
        elif target not in declared.depends_on:
            problems.append(f"{found} — {target!r} is missing from {package}'s depends_on")
        elif target != "core" and not _within(found.module, _module(target).exports):
            exports = ", ".join(_module(target).exports)
            problems.append(f"{found} — not exported by {target} (exports: {exports})")
    return problems


def test_every_package_declares_a_module_named_after_it() -> None:
    wrong = {p: _module(p).name for p in PACKAGES if _module(p).name != p}
    assert not wrong, f"MODULE.name differs from the package name: {wrong}"


def test_installed_packages_are_real_top_level_packages() -> None:
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").exists(), package
        assert (ROOT / package / "module.py").exists(), f"{package} has no module.py"


def test_every_domain_package_depends_on_core() -> None:
    missing = [p for p in PACKAGES if p != "core" and "core" not in _module(p).depends_on]
    assert not missing, f"packages whose depends_on lacks 'core': {missing}"
    assert _module("core").depends_on == ()


def test_dependencies_name_installed_packages_and_exports_their_own_modules() -> None:
    problems = []
    for package in PACKAGES:
        module = _module(package)
        for dependency in module.depends_on:
            if dependency not in PACKAGES:
                problems.append(f"{package} depends on {dependency!r}, which is not installed")
        for export in module.exports:
            parts = export.split(".")
            path = ROOT.joinpath(*parts)
            if parts[0] != package:
                problems.append(f"{package} exports {export!r}, which is not its own")
            elif not (path.with_suffix(".py").exists() or (path / "__init__.py").exists()):
                problems.append(f"{package} exports {export!r}, which does not exist")
    assert not problems, "\n".join(problems)


def test_installed_order_puts_dependencies_first() -> None:
    """core.app and core.cli load packages in INSTALLED order."""
    position = {name: index for index, name in enumerate(INSTALLED)}
    late = [
        f"{package} is listed before its dependency {dependency}"
        for package in INSTALLED
        for dependency in _module(package).depends_on
        if dependency in position and position[dependency] > position[package]
    ]
    assert not late, "\n".join(late)


def test_depends_on_has_no_cycle() -> None:
    graph = {p: tuple(_module(p).depends_on) for p in PACKAGES}
    cycles: list[str] = []
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "visiting"
        for dependency in graph.get(node, ()):
            if state.get(dependency) == "visiting":
                cycle = [*path[path.index(dependency) :], dependency]
                cycles.append(" -> ".join(cycle))
            elif dependency not in state:
                visit(dependency, [*path, dependency])
        state[node] = "done"

    for package in graph:
        if package not in state:
            visit(package, [package])
    assert not cycles, "circular dependencies:\n" + "\n".join(cycles)


def test_core_imports_no_domain_package() -> None:
    offending = [str(found) for found in _imports("core")]
    assert not offending, "core must not import domain packages:\n" + "\n".join(offending)


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "core"])
def test_package_imports_only_declared_and_exported_modules(package: str) -> None:
    problems = _violations(package)
    assert not problems, f"{package} has undeclared imports:\n" + "\n".join(problems)


def test_checker_reports_file_line_and_module_of_each_stray_import() -> None:
    """The checker itself: imports of another package's internals are found and refused."""
    source = (
        '"""A module."""\n'
        "from ingest.store import write\n"
        "import ingest.pipeline\n"
        "from devices.codecs.base import Reading\n"
        "from . import models\n"
        "CHECKED = 'ingest.store:write'\n"
        "def later():\n"
        "    from dashboard import charts\n"
    )
    found = list(_imports_in(ROOT / "parking" / "service.py", source, "parking"))
    assert [str(f) for f in found] == [
        "parking/service.py:2: imports ingest.store",
        "parking/service.py:3: imports ingest.pipeline",
        "parking/service.py:4: imports devices.codecs.base",
        "parking/service.py:8: imports dashboard.charts",
    ]
    assert not _within("ingest.store", _module("ingest").exports)
    assert _within("devices.codecs.base", _module("devices").exports)
    assert not _within("devices.codecsx", ("devices.codecs",))
