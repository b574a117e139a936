"""`civicsense demo` and `civicsense seed demo`: the whole platform on embedded defaults.

With no database URL an embedded PostgreSQL starts in the data folder; with no
broker URL a local mosquitto (or amqtt); then the schema is migrated, a demo town
is seeded, and every package's demo services (ingest, simulator...) run next to
the API until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import psycopg

from . import migrate, tenants
from .audit import Actor
from .cli import require_database
from .crypto import new_key
from .embedded import EmbeddedBroker, EmbeddedPostgres
from .identity import repository, service
from .identity.models import UserCreate
from .identity.tokens import api_key_prefix
from .registry import modules, resolve
from .serve import run_server
from .settings import Settings, redact_url

log = logging.getLogger("civicsense.demo")


def _kept_secret(path: Path, make: Callable[[], str]) -> str:
    """A secret stored in the demo's data folder, so a restart can read what it wrote."""
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def demo_settings(settings: Settings, data_dir: Path, stack: contextlib.ExitStack) -> Settings:
    """Start what is missing (database, broker) and fill in the demo's secrets."""
    data_dir.mkdir(parents=True, exist_ok=True)
    updates: dict[str, object] = {}
    if not settings.database_url:
        postgres = EmbeddedPostgres(data_dir / "postgres")
        updates["database_url"] = postgres.start()
        stack.callback(postgres.stop)
    if not settings.mqtt_url:
        broker = EmbeddedBroker(data_dir / "mqtt")
        updates["mqtt_url"] = broker.start()
        stack.callback(broker.stop)
    if settings.http_ingest_token is None:
        updates["http_ingest_token"] = _kept_secret(
            data_dir / "http_ingest_token", lambda: secrets.token_urlsafe(24)
        )
    if settings.secret_key is None:
        updates["secret_key"] = _kept_secret(data_dir / "secret_key", new_key)
    return Settings.model_validate({**settings.model_dump(), **updates})


DEMO_KEY_PERMISSIONS = [
    "devices:read", "readings:read", "tenants:read", "parking:read", "alerts:read",
    "catalog:read",
]  # fmt: skip


@dataclass(frozen=True)
class DemoUser:
    """A login of the demo town; its password is made once and kept in the data folder."""

    email: str
    display_name: str
    role: str
    label: str  # how the welcome message names it
    password_file: str


DEMO_USERS = (
    DemoUser("gestionnaire@ville-de-demo.fr", "Gestionnaire (démo)", "facility_manager",
             "facility manager", "demo_password"),
    DemoUser("agent@ville-de-demo.fr", "Agent de surveillance (démo)", "enforcement_agent",
             "enforcement agent", "demo_agent_password"),
)  # fmt: skip


@dataclass(frozen=True)
class DemoCredentials:
    """What the welcome message shows: an API key and each demo user's login."""

    api_key: str
    logins: list[tuple[DemoUser, str]]  # user, password


def demo_credentials(settings: Settings, data_dir: Path) -> DemoCredentials:
    """An API key and the users of the demo town, made once and kept in the data folder."""
    key_file = data_dir / "api_token"
    actor = Actor("system", "demo")
    with psycopg.connect(require_database(settings)) as conn:
        tenant_id = tenants.get_or_create(conn, tenants.DEMO_TENANT)
        key = key_file.read_text().strip() if key_file.exists() else ""
        prefix = api_key_prefix(key)
        if not prefix or repository.api_key_by_prefix(conn, prefix) is None:
            created = service.issue_api_key(
                conn, actor, tenant_id=tenant_id, name="demo", created_by=None,
                permissions=DEMO_KEY_PERMISSIONS,
            )  # fmt: skip
            key_file.write_text(created["key"])
            key_file.chmod(0o600)
            key = created["key"]
        logins = []
        for user in DEMO_USERS:
            password = _kept_secret(data_dir / user.password_file,
                                    lambda: secrets.token_urlsafe(12))  # fmt: skip
            if repository.user_by_email(conn, user.email) is None:
                data = UserCreate(email=user.email, display_name=user.display_name,
                                  password=password, roles=[user.role])  # fmt: skip
                service.create_user(conn, actor, tenant_id=tenant_id, data=data)
            logins.append((user, password))
    return DemoCredentials(key, logins)


def seed_all(settings: Settings, devices: int) -> None:
    """Every package's demo data."""
    with psycopg.connect(require_database(settings), autocommit=True) as conn:
        for module in modules():
            if module.demo_seed:
                resolve(module.demo_seed)(conn, settings, devices=devices)


@click.command()
@click.option(
    "--devices",
    default=60,
    show_default=True,
    type=click.IntRange(3, 20000),
    help="Size of the simulated town's fleet.",
)
@click.option(
    "--rate",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0.1, 20000),
    help="Simulated events per second.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where embedded services keep their data [default: CIVICSENSE_DATA_DIR/demo].",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_obj
def demo(
    settings: Settings, devices: int, rate: float, data_dir: Path | None, host: str, port: int
) -> None:
    """Run everything: database, broker, ingest, a simulated town and the API."""
    data_dir = data_dir or Path(settings.data_dir) / "demo"
    with contextlib.ExitStack() as stack:
        settings = demo_settings(settings, data_dir, stack)
        settings = settings.model_copy(update={"host": host, "port": port})
        migrate.upgrade(settings)
        seed_all(settings, devices)
        credentials = demo_credentials(settings, data_dir)
        hints: list[str] = []
        for module in modules():
            for target in module.demo_services:
                hints += resolve(target)(settings, stack, devices=devices, rate=rate)
        _print_welcome(settings, credentials, hints)
        run_server(settings)


def _print_welcome(settings: Settings, credentials: DemoCredentials, paths: list[str]) -> None:
    site = f"http://{settings.host}:{settings.port}"
    base = f"{site}/api/v1"
    token = credentials.api_key
    lines = [
        "",
        "civicsense demo is running (Ctrl-C stops everything)",
        f"  API docs      {base}/docs",
        f"  database      {redact_url(settings.database_url)}",
        f"  MQTT broker   {redact_url(settings.mqtt_url)}",
        f"  control map   {site}/parking/map (enforcement agent's login)",
        f"  dashboards    {site}/dashboard (facility manager's login)",
        f"  API key       {token}",
        *(
            f"  user          {user.email} / {password} ({user.label})"
            for user, password in credentials.logins
        ),
        "  Try:",
        *(f"    curl -H 'Authorization: Bearer {token}' {base}{path}" for path in paths),
        "",
    ]
    click.echo("\n".join(lines))


@click.group()
def seed() -> None:
    """Load example data."""


@seed.command("demo")
@click.option("--devices", default=60, show_default=True, type=click.IntRange(3, 20000))
@click.pass_obj
def seed_demo(settings: Settings, devices: int) -> None:
    """Create the demo town and its simulated fleet's devices (idempotent)."""
    seed_all(settings, devices)
    click.echo(f"demo town seeded with {devices} devices")
