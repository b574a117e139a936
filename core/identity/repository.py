"""The identity tables' SQL: users and their roles, sessions, API keys, payment providers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

_USER = """
SELECT u.id, u.tenant_id, t.slug AS tenant, u.email, u.display_name, u.password_hash,
       u.password_changed_at, u.totp_secret, u.totp_pending, u.totp_last_step,
       u.recovery_codes, u.failed_logins, u.locked_until, u.active, u.created_at,
       u.last_login_at,
       coalesce((SELECT array_agg(role ORDER BY role) FROM user_roles r
                 WHERE r.user_id = u.id), '{}') AS roles,
       coalesce((SELECT array_agg(permission ORDER BY permission) FROM user_permissions p
                 WHERE p.user_id = u.id), '{}') AS grants
FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id
"""


def _one(conn: psycopg.Connection, query: str, params: Any) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()


def _all(conn: psycopg.Connection, query: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def user_by_email(conn: psycopg.Connection, email: str) -> dict[str, Any] | None:
    """A user with roles and grants, by (lowercase) e-mail."""
    return _one(conn, _USER + " WHERE u.email = %s", (email,))


def user_by_id(conn: psycopg.Connection, user_id: int) -> dict[str, Any] | None:
    """A user with roles and grants, by id (what the connection may see)."""
    return _one(conn, _USER + " WHERE u.id = %s", (user_id,))


def users(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every user the connection may see."""
    return _all(conn, _USER + " ORDER BY u.email")


def insert_user(
    conn: psycopg.Connection,
    *,
    tenant_id: int | None,
    email: str,
    display_name: str | None,
    password_hash: str,
) -> int:
    """A new user row; its id. UniqueViolation when the e-mail is taken."""
    row = conn.execute(
        "INSERT INTO users (tenant_id, email, display_name, password_hash)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (tenant_id, email, display_name, password_hash),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _replace(
    conn: psycopg.Connection, table: str, column: str, user_id: int, tenant_id: int | None,
    values: list[str],
) -> None:  # fmt: skip
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE user_id = %s").format(sql.Identifier(table)), (user_id,)
    )
    insert = sql.SQL("INSERT INTO {} (user_id, tenant_id, {}) VALUES (%s, %s, %s)").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    with conn.cursor() as cur:
        cur.executemany(insert, [(user_id, tenant_id, value) for value in values])


def set_roles(
    conn: psycopg.Connection, user_id: int, tenant_id: int | None, roles: list[str]
) -> None:
    """Replace the user's roles."""
    _replace(conn, "user_roles", "role", user_id, tenant_id, roles)


def set_grants(
    conn: psycopg.Connection, user_id: int, tenant_id: int | None, grants: list[str]
) -> None:
    """Replace the user's individual permission grants."""
    _replace(conn, "user_permissions", "permission", user_id, tenant_id, grants)


_SETTABLE = frozenset({
    "display_name", "active", "password_hash", "password_changed_at", "totp_secret",
    "totp_pending", "totp_last_step", "recovery_codes", "failed_logins", "locked_until",
})  # fmt: skip


def update_user(conn: psycopg.Connection, user_id: int, **values: Any) -> None:
    """Set columns of a user (names from the service, never from input)."""
    unknown = set(values) - _SETTABLE
    if unknown:
        raise ValueError(f"not settable: {sorted(unknown)}")
    query = sql.SQL("UPDATE users SET {} WHERE id = %(user_id)s").format(
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
            for column in values
        )
    )
    conn.execute(query, {**values, "user_id": user_id})


def login_failed(
    conn: psycopg.Connection, user_id: int, *, max_failures: int, lockout_minutes: int
) -> datetime | None:
    """Count a failed login; lock the account at `max_failures`. Returns the lock's end."""
    row = conn.execute(
        "UPDATE users SET failed_logins = failed_logins + 1,"
        " locked_until = CASE WHEN failed_logins + 1 >= %s"
        "   THEN now() + make_interval(mins => %s) ELSE locked_until END"
        " WHERE id = %s RETURNING locked_until",
        (max_failures, lockout_minutes, user_id),
    ).fetchone()
    return row[0] if row else None


def login_succeeded(conn: psycopg.Connection, user_id: int) -> None:
    """Reset the failure count and stamp the login."""
    conn.execute(
        "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = now()"
        " WHERE id = %s",
        (user_id,),
    )


# sessions (refresh tokens and browser cookies)


def insert_session(
    conn: psycopg.Connection,
    *,
    user_id: int,
    kind: str,
    token_hash: bytes,
    csrf_hash: bytes | None,
    expires_at: datetime,
    source: str | None,
) -> None:
    """Store a session's hashes."""
    conn.execute(
        "INSERT INTO auth_sessions (user_id, kind, token_hash, csrf_hash, expires_at, source)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (user_id, kind, token_hash, csrf_hash, expires_at, source),
    )


def session_by_hash(
    conn: psycopg.Connection, kind: str, token_hash: bytes
) -> dict[str, Any] | None:
    """A session of `kind` by token hash, whether live or not."""
    return _one(
        conn,
        "SELECT id, user_id, csrf_hash, expires_at, revoked_at, expires_at > now() AS live"
        " FROM auth_sessions WHERE kind = %s AND token_hash = %s",
        (kind, token_hash),
    )


def revoke_session(conn: psycopg.Connection, session_id: int) -> None:
    """End one session."""
    conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
        (session_id,),
    )


def revoke_user_sessions(conn: psycopg.Connection, user_id: int) -> None:
    """End every session of a user (password change, deactivation, stolen token)."""
    conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
        (user_id,),
    )


# API keys

_API_KEY = (
    "SELECT id, tenant_id, name, prefix, permissions, created_at, last_used_at, revoked_at"
    " FROM api_keys"
)


def insert_api_key(
    conn: psycopg.Connection,
    *,
    tenant_id: int,
    name: str,
    prefix: str,
    secret_hash: bytes,
    permissions: list[str],
    created_by: int | None,
) -> dict[str, Any]:
    """Store a key's hash; the row without it."""
    row = _one(
        conn,
        "INSERT INTO api_keys (tenant_id, name, prefix, secret_hash, permissions, created_by)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " RETURNING id, tenant_id, name, prefix, permissions, created_at, last_used_at,"
        " revoked_at",
        (tenant_id, name, prefix, secret_hash, permissions, created_by),
    )
    assert row is not None
    return row


def api_key_by_prefix(conn: psycopg.Connection, prefix: str) -> dict[str, Any] | None:
    """A key with its hash, by public prefix."""
    return _one(
        conn,
        "SELECT k.id, k.tenant_id, k.name, k.prefix, k.secret_hash, k.permissions,"
        " k.revoked_at FROM api_keys k WHERE k.prefix = %s",
        (prefix,),
    )


def api_keys(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every key the connection may see, newest first."""
    return _all(conn, _API_KEY + " ORDER BY id DESC")


def revoke_api_key(conn: psycopg.Connection, key_id: int) -> dict[str, Any] | None:
    """Revoke a key (idempotent); the row, or None if invisible."""
    return _one(
        conn,
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
        " RETURNING id, tenant_id, name, prefix, permissions, created_at, last_used_at,"
        " revoked_at",
        (key_id,),
    )


def touch_api_key(conn: psycopg.Connection, key_id: int) -> None:
    """Stamp a key's use, at most once a minute."""
    conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        (key_id,),
    )


# payment providers' webhook secrets

_PROVIDER_COLUMNS = "id, tenant_id, provider, created_at, revoked_at"


def insert_provider(
    conn: psycopg.Connection,
    *,
    tenant_id: int,
    provider: str,
    secret_encrypted: bytes,
    created_by: int | None,
) -> dict[str, Any]:
    """Register a provider's secret; the row without it. UniqueViolation if one is live."""
    row = _one(
        conn,
        "INSERT INTO payment_providers (tenant_id, provider, secret_encrypted, created_by)"
        " VALUES (%s, %s, %s, %s) RETURNING " + _PROVIDER_COLUMNS,
        (tenant_id, provider, secret_encrypted, created_by),
    )
    assert row is not None
    return row


def providers(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every provider registration the connection may see."""
    return _all(conn, "SELECT " + _PROVIDER_COLUMNS + " FROM payment_providers ORDER BY id DESC")


def revoke_provider(conn: psycopg.Connection, provider_id: int) -> dict[str, Any] | None:
    """Revoke a provider's secret (idempotent); the row, or None if invisible."""
    return _one(
        conn,
        "UPDATE payment_providers SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
        " RETURNING " + _PROVIDER_COLUMNS,
        (provider_id,),
    )
