"""Data-subject requests (GDPR art. 15, 17, 20): find, export or erase what concerns a plate
or a person in one town, every package contributing its part. Each request is written to
the audit trail with the plate's pseudonym, never the plate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from core import audit
from core.audit import Actor
from core.settings import Settings

from .contract import Context, Found, Rows, Subject, UserColumn, parts
from .pseudonyms import pseudonymiser

Kind = Literal["plate", "user"]


class RequestError(LookupError):
    """No such town, or a plate that is not one."""


def context(conn: psycopg.Connection, settings: Settings, slug: str, now: datetime) -> Context:
    """The tenant of `slug` as a request's context."""
    row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
    if row is None:
        raise RequestError(f"no tenant {slug!r}")
    tenant_id = int(row[0])
    return Context(tenant_id, settings, now, pseudonymiser(settings, tenant_id))


def subject(conn: psycopg.Connection, ctx: Context, kind: Kind, value: str) -> Subject:
    """The subject of a request: a plate's matching key, or an e-mail and its account here."""
    if kind == "plate":
        keying = next((p.plate_key for _, p in parts() if p.plate_key is not None), None)
        if keying is None:
            raise RequestError("no installed package holds plates")
        try:
            return Subject("plate", keying(value))
        except ValueError as exc:
            raise RequestError(f"plate: {exc}") from None
    email = value.strip().lower()
    row = conn.execute(
        "SELECT id FROM users WHERE tenant_id = %s AND email = %s", (ctx.tenant_id, email)
    ).fetchone()
    return Subject("user", email, int(row[0]) if row else None)


def _user_columns(subject: Subject) -> Iterator[UserColumn]:
    if subject.kind == "user":
        for _, privacy in parts():
            yield from privacy.user_columns


def _where(column: UserColumn) -> sql.Composed:
    return sql.SQL("FROM {} WHERE tenant_id = %s AND {} = %s").format(
        sql.Identifier(column.table), sql.Identifier(column.column)
    )


def find(conn: psycopg.Connection, ctx: Context, subject: Subject) -> list[Found]:
    """Every table where the subject appears, with counts and dates."""
    found: list[Found] = []
    for _, privacy in parts():
        if privacy.find is not None:
            found += privacy.find(conn, ctx, subject)
    for column in _user_columns(subject):
        query = sql.SQL("SELECT count(*), min({t}), max({t}) ").format(
            t=sql.Identifier(column.time_column)
        ) + _where(column)
        row = conn.execute(query, (ctx.tenant_id, subject.value)).fetchone()
        if row and row[0]:
            found.append(Found(f"{column.table}.{column.column}", row[0], row[1], row[2]))
    return found


def export(conn: psycopg.Connection, ctx: Context, subject: Subject) -> Rows:
    """Everything concerning the subject, table by table."""
    rows: Rows = {}
    for _, privacy in parts():
        if privacy.export is not None:
            rows.update(privacy.export(conn, ctx, subject))
    for column in _user_columns(subject):
        with conn.cursor(row_factory=dict_row) as cur:
            found = cur.execute(sql.SQL("SELECT * ") + _where(column),
                                (ctx.tenant_id, subject.value)).fetchall()  # fmt: skip
        if found:
            rows[column.table] = [_printable(row) for row in found]
    return rows


def _printable(row: dict[str, Any]) -> dict[str, Any]:
    """A row for the export file: binary columns (photos, hashes) are named, not copied."""
    return {k: f"<{len(v)} bytes>" if isinstance(v, bytes | memoryview) else v
            for k, v in row.items()}  # fmt: skip


def erase(conn: psycopg.Connection, ctx: Context, subject: Subject) -> dict[str, int]:
    """Pseudonymise the plate, or anonymise the person, everywhere in the tenant."""
    counts: dict[str, int] = {}
    for _, privacy in parts():
        if privacy.erase is not None:
            counts.update(privacy.erase(conn, ctx, subject))
    for column in _user_columns(subject):
        query = sql.SQL("UPDATE {} SET {} = %s WHERE tenant_id = %s AND {} = %s").format(
            sql.Identifier(column.table), sql.Identifier(column.column),
            sql.Identifier(column.column),
        )  # fmt: skip
        updated = conn.execute(query, (subject.replacement, ctx.tenant_id, subject.value))
        counts[f"{column.table}.{column.column}"] = updated.rowcount
    return counts


def audit_target(ctx: Context, subject: Subject) -> str:
    """How the audit trail names the subject: a plate's pseudonym, a person's account."""
    if subject.kind == "plate":
        return ctx.pseudonym(subject.value)
    return f"user:{subject.user_id}" if subject.user_id is not None else "user:none"


def record(
    conn: psycopg.Connection, actor: Actor, ctx: Context, subject: Subject, what: str,
    details: dict[str, Any],
) -> None:  # fmt: skip
    """Write the request to the audit trail (never the plate or the e-mail in clear)."""
    audit.record(conn, actor, f"privacy.{what}", target=audit_target(ctx, subject),
                 tenant_id=ctx.tenant_id, details={"subject": subject.kind, **details})  # fmt: skip
