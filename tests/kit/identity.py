"""Users and API keys for tests, made through the same service code as the API's."""

from __future__ import annotations

from typing import Any

import psycopg
import pyotp

from core import crypto
from core.audit import Actor
from core.identity import repository, service
from core.identity.models import UserCreate
from core.settings import Settings

PASSWORD = "correct horse battery staple"
SYSTEM = Actor("system", "tests")


def add_user(
    conn: psycopg.Connection,
    *,
    tenant_id: int | None,
    email: str,
    roles: list[str],
    permissions: list[str] | None = None,
    password: str = PASSWORD,
) -> dict[str, Any]:
    """A user created as the CLI would."""
    data = UserCreate(email=email, password=password, roles=roles, permissions=permissions or [])
    return service.create_user(conn, SYSTEM, tenant_id=tenant_id, data=data)


def enable_totp(conn: psycopg.Connection, settings: Settings, user_id: int) -> pyotp.TOTP:
    """Give a user an active TOTP secret; the authenticator that generates its codes."""
    secret = pyotp.random_base32()
    repository.update_user(conn, user_id, totp_secret=crypto.encrypt(settings, secret))
    return pyotp.TOTP(secret)


def add_api_key(conn: psycopg.Connection, *, tenant_id: int, permissions: list[str]) -> str:
    """A new API key of the tenant; the key itself."""
    created = service.issue_api_key(
        conn, SYSTEM, tenant_id=tenant_id, name="tests", permissions=permissions, created_by=None
    )
    return str(created["key"])


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token or an API key."""
    return {"Authorization": f"Bearer {token}"}
