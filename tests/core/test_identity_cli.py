"""`civicsense tenant create --siret`, `civicsense user create`, `civicsense apikey create`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from core.app import create_app
from core.cli import cli
from core.settings import Settings
from core.tenants import siret_is_valid
from tests.kit.identity import PASSWORD, bearer

LYON_SIRET = "21690123100011"


@pytest.fixture
def run(database_url: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`civicsense ARGS...` with the test database; `stdin` feeds standard input."""
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, stdin: str | None = None) -> Result:
        assert settings.secret_key is not None
        env = {
            "CIVICSENSE_DATABASE_URL": database_url,
            "CIVICSENSE_SECRET_KEY": settings.secret_key.get_secret_value(),
        }
        return CliRunner(env=env).invoke(cli, list(args), input=stdin)

    return invoke


@pytest.mark.parametrize(
    ("siret", "valid"),
    [
        (LYON_SIRET, True),
        ("21690123100012", False),  # one digit off
        ("35600000000048", True),  # La Poste's head office: Luhn
        ("35600000049837", True),  # a La Poste office: digit sum a multiple of 5
        ("35600000049838", False),
        ("2169012310001", False),
        ("2169012310001A", False),
    ],
)
def test_siret_checksum(siret: str, valid: bool) -> None:
    assert siret_is_valid(siret) is valid


def test_tenant_create_checks_the_siret_and_is_audited(run: Any, conn: psycopg.Connection) -> None:
    bad = run("tenant", "create", "lyon", "--name", "Lyon", "--siret", "21690123100012")
    assert bad.exit_code != 0 and "siret" in bad.output.lower()
    good = run("tenant", "create", "lyon", "--name", "Lyon", "--siret", LYON_SIRET,
               "--insee", "69123")  # fmt: skip
    assert good.exit_code == 0, good.output
    assert conn.execute("SELECT siret, insee_code FROM tenants").fetchall() == [
        (LYON_SIRET, "69123")
    ]
    assert conn.execute(
        "SELECT actor_kind, action, target FROM audit_log WHERE action = 'tenant.create'"
    ).fetchall() == [("cli", "tenant.create", "lyon")]


def test_user_create_reads_the_password_from_stdin(
    run: Any, conn: psycopg.Connection, settings: Settings
) -> None:
    assert run("tenant", "create", "lyon", "--name", "Lyon").exit_code == 0
    weak = run("user", "create", "a@lyon.fr", "--tenant", "lyon", "--role", "viewer",
               "--password-stdin", stdin="short\n")  # fmt: skip
    assert weak.exit_code != 0 and "12 characters" in weak.output
    created = run("user", "create", "Agent@Lyon.fr", "--tenant", "lyon", "--role",
                  "enforcement_agent", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert created.exit_code == 0, created.output
    assert PASSWORD not in created.output
    again = run("user", "create", "agent@lyon.fr", "--tenant", "lyon", "--role", "viewer",
                "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert again.exit_code != 0 and "already has an account" in again.output
    tenantless = run("user", "create", "x@lyon.fr", "--role", "viewer", "--password-stdin",
                     stdin=PASSWORD + "\n")  # fmt: skip
    assert tenantless.exit_code != 0 and "tenant" in tenantless.output
    operator = run("user", "create", "ops@civicsense.fr", "--role", "platform_admin",
                   "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert operator.exit_code == 0, operator.output
    stored = conn.execute("SELECT email, password_hash FROM users ORDER BY id").fetchall()
    assert [email for email, _ in stored] == ["agent@lyon.fr", "ops@civicsense.fr"]
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for _, h in stored)
    with TestClient(create_app(settings)) as client:
        login = client.post(
            "/api/v1/auth/token", data={"username": "agent@lyon.fr", "password": PASSWORD}
        )
        assert login.status_code == 200


def test_user_set_password_lets_the_user_in_with_the_new_password_only(
    run: Any, conn: psycopg.Connection, settings: Settings
) -> None:
    assert run("tenant", "create", "lyon", "--name", "Lyon").exit_code == 0
    assert run("user", "create", "a@lyon.fr", "--tenant", "lyon", "--role", "viewer",
               "--password-stdin", stdin=PASSWORD + "\n").exit_code == 0  # fmt: skip
    new = "another long passphrase 42"
    assert run("user", "set-password", "nobody@lyon.fr", "--password-stdin",
               stdin=new + "\n").exit_code != 0  # fmt: skip
    weak = run("user", "set-password", "a@lyon.fr", "--password-stdin", stdin="short\n")
    assert weak.exit_code != 0 and "12 characters" in weak.output
    done = run("user", "set-password", "A@Lyon.fr", "--password-stdin", stdin=new + "\n")
    assert done.exit_code == 0, done.output
    assert new not in done.output
    with TestClient(create_app(settings)) as client:
        for password, status in ((PASSWORD, 401), (new, 200)):
            login = client.post(
                "/api/v1/auth/token", data={"username": "a@lyon.fr", "password": password}
            )
            assert login.status_code == status
    assert conn.execute(
        "SELECT actor_kind, target FROM audit_log WHERE action = 'auth.password.set'"
    ).fetchall() == [("cli", "a@lyon.fr")]


def test_apikey_create_prints_the_key_once_and_stores_a_hash(
    run: Any, conn: psycopg.Connection, settings: Settings
) -> None:
    assert run("tenant", "create", "lyon", "--name", "Lyon").exit_code == 0
    result = run("apikey", "create", "--tenant", "lyon", "--name", "SIG export",
                 "--permission", "readings:read", "--permission", "devices:read")  # fmt: skip
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("csk_")
    stored = conn.execute("SELECT prefix, secret_hash, permissions FROM api_keys").fetchone()
    assert stored is not None and key not in str(stored) and key[4:12] == stored[0]
    assert stored[2] == ["devices:read", "readings:read"]
    with TestClient(create_app(settings)) as client:
        me = client.get("/api/v1/auth/me", headers=bearer(key))
        assert me.status_code == 200 and me.json()["label"] == f"api-key:SIG export ({stored[0]})"
    unknown = run("apikey", "create", "--tenant", "lyon", "--name", "x", "--permission", "root")
    assert unknown.exit_code != 0
