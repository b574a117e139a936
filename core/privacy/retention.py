"""The daily retention job: each package pseudonymises or drops, in every town, what is
past its retention (plates, sessions, contacts, audit entries).

It runs on the owner's connection, one transaction per town (a failing town does not
stop the others), and writes what it changed to that town's audit trail. A second run
finds nothing left to do and writes nothing. `now` is a parameter so that tests can
travel in time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import psycopg

from core import audit
from core.audit import Actor
from core.db import connect
from core.settings import Settings

from . import trail
from .contract import Context, parts
from .pseudonyms import pseudonymiser

log = logging.getLogger("civicsense.privacy")
ACTOR = Actor("system", "privacy.retention")


def apply(settings: Settings, now: datetime) -> dict[str, dict[str, int]]:
    """Apply every retention period at `now`; what changed, per tenant slug."""
    changed: dict[str, dict[str, int]] = {}
    with connect(settings.database_url) as conn:
        towns = conn.execute("SELECT id, slug FROM tenants ORDER BY id").fetchall()
        conn.commit()
        for tenant_id, slug in towns:
            try:
                with conn.transaction():
                    counts = _apply_to_tenant(conn, settings, tenant_id, now)
            except psycopg.Error:
                log.exception("retention not applied for %s; retried at the next run", slug)
                continue
            if counts:
                changed[slug] = counts
                log.info("retention for %s: %s", slug, counts)
        with conn.transaction():
            cutoff = now - timedelta(days=settings.audit_retention_days)
            operator_level = trail.expire(conn, None, cutoff)
        if operator_level:
            changed["(operator)"] = {"audit_log.expired": operator_level}
    return changed


def _apply_to_tenant(
    conn: psycopg.Connection, settings: Settings, tenant_id: int, now: datetime
) -> dict[str, int]:
    ctx = Context(tenant_id, settings, now, pseudonymiser(settings, tenant_id))
    counts: dict[str, int] = {}
    for _, privacy in parts():
        if privacy.retain is not None:
            counts.update(privacy.retain(conn, ctx))
    counts = {what: n for what, n in counts.items() if n}
    if counts:
        audit.record(conn, ACTOR, "privacy.retention", tenant_id=tenant_id, details=counts)
    return counts


def run_job(settings: Settings) -> None:
    """The scheduled job (once a day)."""
    apply(settings, datetime.now(UTC))
