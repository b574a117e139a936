"""Logging in: passwords, the TOTP second factor and its enrolment, lockout and
throttling, refresh tokens, password change, browser sessions with CSRF, API keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pyotp
import pytest
from fastapi.testclient import TestClient

from core import tenants
from core.app import create_app
from core.settings import Settings
from tests.kit.identity import PASSWORD, add_api_key, add_user, bearer, enable_totp

TECH = "tech@annecy.fr"
ADMIN = "admin@annecy.fr"
NEW_ADMIN = "new-admin@annecy.fr"


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    return tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Ville d'Annecy"))


@pytest.fixture
def authenticator(conn: psycopg.Connection, settings: Settings, town: int) -> pyotp.TOTP:
    """Users: a technician, an admin with TOTP (returned), an admin without."""
    add_user(conn, tenant_id=town, email=TECH, roles=["technician"])
    admin = add_user(conn, tenant_id=town, email=ADMIN, roles=["tenant_admin"])
    add_user(conn, tenant_id=town, email=NEW_ADMIN, roles=["tenant_admin"])
    return enable_totp(conn, settings, admin["id"])


@pytest.fixture
def client(settings: Settings, authenticator: pyotp.TOTP) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _login(client: TestClient, email: str, password: str = PASSWORD, otp: str | None = None):
    form = {"username": email, "password": password, **({"otp": otp} if otp else {})}
    return client.post("/api/v1/auth/token", data=form)


def _failures(conn: psycopg.Connection, email: str) -> list[str]:
    rows = conn.execute(
        "SELECT details->>'reason' FROM audit_log WHERE action = 'auth.login'"
        " AND outcome = 'failure' AND target = %s ORDER BY id",
        (email,),
    ).fetchall()
    return [reason for (reason,) in rows]


def test_user_logs_in_and_the_token_says_who_it_is(client: TestClient) -> None:
    response = _login(client, TECH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["scope"] == "full"
    assert body["refresh_token"] and body["expires_in"] == 15 * 60
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"])).json()
    assert me["label"] == TECH and me["roles"] == ["technician"]
    assert "devices:write" in me["permissions"] and "users:manage" not in me["permissions"]


def test_wrong_password_is_401_and_the_audit_trail_shows_it(
    client: TestClient, conn: psycopg.Connection
) -> None:
    response = _login(client, TECH, "not the password at all")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    unknown = _login(client, "nobody@annecy.fr", "whatever it is, really")
    assert unknown.status_code == 401 and unknown.json() == response.json()
    assert _failures(conn, TECH) == ["bad_credentials"]
    assert _failures(conn, "nobody@annecy.fr") == ["bad_credentials"]


def test_admin_gets_no_token_without_a_valid_code(
    client: TestClient, authenticator: pyotp.TOTP, conn: psycopg.Connection
) -> None:
    missing = _login(client, ADMIN)
    assert missing.status_code == 401 and "TOTP" in missing.json()["detail"]
    assert _login(client, ADMIN, otp="000000").status_code == 401
    code = authenticator.now()
    ok = _login(client, ADMIN, otp=code)
    assert ok.status_code == 200 and ok.json()["scope"] == "full"
    assert _login(client, ADMIN, otp=code).status_code == 401, "a code works once"
    assert _failures(conn, ADMIN)[:2] == ["second_factor_missing", "second_factor_wrong"]


def test_admin_without_second_factor_must_enrol_then_use_it(client: TestClient) -> None:
    limited = _login(client, NEW_ADMIN)
    assert limited.status_code == 200
    assert limited.json()["scope"] == "totp-enrolment" and limited.json()["refresh_token"] is None
    auth = bearer(limited.json()["access_token"])
    assert client.get("/api/v1/users", headers=auth).status_code == 403

    enrolment = client.post("/api/v1/auth/totp/enrol", headers=auth).json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/civicsense:")
    assert enrolment["qr_svg"].startswith("<svg")
    app = pyotp.TOTP(enrolment["secret"])
    wrong = client.post("/api/v1/auth/totp/confirm", headers=auth, json={"code": "123456"})
    assert wrong.status_code == 422
    confirmed = client.post("/api/v1/auth/totp/confirm", headers=auth, json={"code": app.now()})
    assert confirmed.status_code == 200
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10

    assert _login(client, NEW_ADMIN).status_code == 401
    recovered = _login(client, NEW_ADMIN, otp=codes[3].upper())
    assert recovered.status_code == 200 and recovered.json()["scope"] == "full"
    assert _login(client, NEW_ADMIN, otp=codes[3]).status_code == 401, "recovery codes work once"
    users = client.get("/api/v1/users", headers=bearer(recovered.json()["access_token"]))
    assert users.status_code == 200
    assert next(u for u in users.json() if u["email"] == NEW_ADMIN)["totp_enabled"] is True


def test_repeated_bad_passwords_lock_the_account(
    client: TestClient, conn: psycopg.Connection
) -> None:
    for _ in range(5):
        assert _login(client, TECH, "a wrong password again").status_code == 401
    locked = _login(client, TECH)  # the right password, too late
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert _failures(conn, TECH) == ["bad_credentials"] * 5 + ["locked"]


def test_many_failures_from_one_address_are_throttled(
    settings: Settings, authenticator: pyotp.TOTP
) -> None:
    strict = settings.model_copy(update={"login_max_failures_per_source": 3})
    with TestClient(create_app(strict)) as client:
        for n in range(3):
            assert _login(client, f"guess{n}@annecy.fr", "some password 123").status_code == 401
        throttled = _login(client, TECH)
        assert throttled.status_code == 429 and "address" in throttled.json()["detail"]


def test_refresh_rotates_and_a_reused_refresh_token_ends_every_session(
    client: TestClient, conn: psycopg.Connection
) -> None:
    first = _login(client, TECH).json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])).status_code == 200
    stolen = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    after = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert after.status_code == 401, "the whole family is revoked"
    reasons = conn.execute(
        "SELECT details->>'reason' FROM audit_log WHERE action = 'auth.refresh'"
    ).fetchall()
    assert reasons == [("reused_refresh_token",)] * 2  # the stolen one, then its successor


def test_password_change_ends_earlier_tokens(client: TestClient) -> None:
    token = _login(client, TECH).json()["access_token"]
    short = client.post(
        "/api/v1/auth/password", headers=bearer(token),
        json={"current_password": PASSWORD, "new_password": "short"},
    )  # fmt: skip
    assert short.status_code == 422
    wrong = client.post(
        "/api/v1/auth/password", headers=bearer(token),
        json={"current_password": "not my password", "new_password": "a brand new passphrase"},
    )  # fmt: skip
    assert wrong.status_code == 403
    changed = client.post(
        "/api/v1/auth/password", headers=bearer(token),
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )  # fmt: skip
    assert changed.status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert _login(client, TECH).status_code == 401
    assert _login(client, TECH, "a brand new passphrase").status_code == 200


def test_browser_session_needs_the_csrf_token_to_write(
    client: TestClient, authenticator: pyotp.TOTP
) -> None:
    form = {"username": ADMIN, "password": PASSWORD, "otp": authenticator.now()}
    started = client.post("/api/v1/auth/session", data=form)
    assert started.status_code == 200
    assert "httponly" in started.headers["set-cookie"].lower()
    csrf = started.json()["csrf_token"]
    assert client.get("/api/v1/auth/me").json()["label"] == ADMIN  # the cookie alone
    user: dict[str, Any] = {"email": "new@annecy.fr", "password": PASSWORD, "roles": ["viewer"]}
    assert client.post("/api/v1/users", json=user).status_code == 403
    created = client.post("/api/v1/users", json=user, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text
    assert client.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_deactivated_user_and_revoked_key_stop_at_once(
    client: TestClient, conn: psycopg.Connection, authenticator: pyotp.TOTP, town: int
) -> None:
    tech = _login(client, TECH).json()["access_token"]
    key = add_api_key(conn, tenant_id=town, permissions=["readings:read"])
    assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 200
    admin = bearer(_login(client, ADMIN, otp=authenticator.now()).json()["access_token"])
    users = {u["email"]: u["id"] for u in client.get("/api/v1/users", headers=admin).json()}
    off = client.patch(f"/api/v1/users/{users[TECH]}", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get("/api/v1/auth/me", headers=bearer(tech)).status_code == 401
    keys = client.get("/api/v1/api-keys", headers=admin).json()
    assert client.delete(f"/api/v1/api-keys/{keys[0]['id']}", headers=admin).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(key)).status_code == 401
