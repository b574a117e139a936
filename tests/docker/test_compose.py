"""docker/compose.yaml and docker/Dockerfile, checked without a Docker engine: the Compose
specification, and what a reviewer of a production deployment looks for."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
# Settings being added by the observability work of the same issue (issue 9).
NEW_SETTINGS = {"metrics_port", "log_format", "metrics_token", "scheduler"}
ONE_SHOT = {"migrate"}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe", pure=True).load(path.read_text())
    return data


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(_load(COMPOSE)["services"])


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def _check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(command), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    result = _check_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The validator does look: the same file with a misspelt service key is refused.
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restarts: always"))
    assert _check_schema(broken).returncode != 0


def test_every_image_is_pinned_to_an_exact_version(services: dict[str, dict[str, Any]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", tag), f"{name}: {image} is not exact"
        if "build" in service:
            assert image == f"civicsense:{version}", f"{name}: tag is not pyproject's version"


def test_long_running_services_restart_and_report_their_health(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) >= {
        "timescaledb",
        "redis",
        "mosquitto",
        "chirpstack",
        "chirpstack-gateway-bridge",
        "migrate",
        "serve",
        "scheduler",
        "ingest-1",
        "ingest-2",
    }
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_civicsense_processes_start_after_the_migrations(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name, service in services.items():
        if "build" in service and name not in ONE_SHOT:
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully", name
    serve = services["serve"]["command"]
    assert serve[:1] == ["serve"] and "--no-scheduler" in serve and "0.0.0.0" in serve
    assert services["scheduler"]["command"] == ["scheduler"]


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_two_ingest_workers_share_one_group_with_stable_distinct_client_ids(
    services: dict[str, dict[str, Any]],
) -> None:
    workers = {name: s for name, s in services.items() if s.get("command", [""])[0] == "ingest"}
    assert len(workers) == 2
    groups = {_option(s["command"], "--shared-group") for s in workers.values()}
    client_ids = {_option(s["command"], "--client-id") for s in workers.values()}
    assert len(groups) == 1 and "" not in groups
    assert len(client_ids) == 2
    assert all("deploy" not in s for s in workers.values()), "replicas share one client id"


def test_every_variable_compose_reads_is_in_the_env_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE.read_text()))
    assert used, "compose reads no variable"
    missing = used - set(_env_example())
    assert not missing, f"not in docker/.env.example: {sorted(missing)}"


def test_env_example_holds_no_secret() -> None:
    for name, value in _env_example().items():
        if re.search(r"PASSWORD|SECRET|TOKEN", name):
            assert value in ("", "change-me"), f"{name} has a value in .env.example"


def test_secrets_reach_compose_only_from_the_env_file(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{\w+:[?-][^}]*\}", str(value)), f"{name}: {key}"
            credentials = str(value).rpartition("@")[0]
            if "://" in credentials:  # a URL with a login: its password is interpolated
                assert "${" in credentials, f"{name}: {key} has a literal password"


def test_every_civicsense_variable_in_docker_is_a_real_setting() -> None:
    known = {f"CIVICSENSE_{name.upper()}" for name in {*Settings.model_fields, *NEW_SETTINGS}}
    found: dict[str, set[str]] = {}
    for path in DOCKER.rglob("*"):
        if path.is_file():
            for name in re.findall(r"\bCIVICSENSE_[A-Z0-9_]+", path.read_text(errors="ignore")):
                found.setdefault(name, set()).add(path.name)
    assert "CIVICSENSE_DATABASE_URL" in found
    unknown = {name: sorted(files) for name, files in found.items() if name not in known}
    assert not unknown, f"not settings of core.settings.Settings: {unknown}"


def _stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), grouped by build stage."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def test_dockerfile_final_stage_is_pinned_slim_and_not_root() -> None:
    stages = _stages((DOCKER / "Dockerfile").read_text())
    assert len(stages) >= 2, "not a multi-stage build"
    for stage in stages:
        image = stage[0][1].split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    final = stages[-1]
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users, "the final stage runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1]}: not a fixed non-root uid"
    runs = " ".join(arguments for keyword, arguments in final if keyword == "RUN")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|clang)\b", runs)


def test_dockerfile_installs_with_the_script_and_copies_every_package() -> None:
    stages = _stages((DOCKER / "Dockerfile").read_text())
    build = stages[0]
    runs = [arguments for keyword, arguments in build if keyword == "RUN"]
    assert any("docker/install-python.sh" in run for run in runs)
    copied = {arguments.split()[0] for keyword, arguments in build if keyword == "COPY"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"packages the image would miss: {sorted(packages - copied)}"
