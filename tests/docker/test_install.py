"""The image's Python install steps, run outside Docker: docker/install-python.sh builds
a working virtualenv from the lock, and the lock fits pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PACKAGES = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
DEV_TOOLS = {"pytest", "ruff", "mypy", "hypothesis", "playwright", "schemathesis"}


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "docker" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith(("#", "-")):
            name, separator, version = line.partition("==")
            assert separator, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version
    return pins


def _build_context(folder: Path) -> Path:
    """What the Dockerfile copies into its build stage, laid out the same way."""
    (folder / "docker").mkdir(parents=True)
    for name in ("install-python.sh", "requirements.txt", "requirements-build.txt"):
        shutil.copy(ROOT / "docker" / name, folder / "docker" / name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, folder / name)
    for pattern in PACKAGES:
        package = pattern.rstrip("*")
        shutil.copytree(
            ROOT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return folder


def test_lock_pins_every_runtime_requirement_within_pyproject() -> None:
    pins = _lock()
    for line in PROJECT["dependencies"]:
        requirement = Requirement(line)
        names = [canonicalize_name(requirement.name)]
        names += [canonicalize_name(f"{requirement.name}-{extra}") for extra in requirement.extras]
        for name in names:
            assert name in pins, f"{name} is not in docker/requirements.txt"
        version = pins[names[0]]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name}=={version} does not satisfy {line}"
        )
    assert not DEV_TOOLS & set(pins), "the image's lock holds development tools"


def test_install_script_builds_a_working_virtualenv(tmp_path: Path) -> None:
    """The Dockerfile's RUN, outside Docker (pip uses this machine's wheel cache)."""
    context = _build_context(tmp_path / "src")
    target = tmp_path / "venv"
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["sh", str(context / "docker" / "install-python.sh"), str(target)],
        env=env,
        check=True,
        timeout=900,
    )
    result = subprocess.run(
        [str(target / "bin" / "civicsense"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for command in ("serve", "ingest", "scheduler", "db", "user", "tenant"):
        assert f"  {command} " in result.stdout
    check = subprocess.run([str(target / "bin" / "pip"), "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    freeze = subprocess.run(
        [str(target / "bin" / "pip"), "freeze", "--exclude", "civicsense"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {
        canonicalize_name(name): version
        for name, _, version in (line.partition("==") for line in freeze.splitlines())
    }
    assert installed == _lock(), "the virtualenv differs from docker/requirements.txt"
