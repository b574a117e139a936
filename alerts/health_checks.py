"""Scheduled checks of device and gateway health: silence and gateway rules.

Nothing arrives to say a device has stopped talking, so these rules are checked by the
scheduler rather than on the ingest stream. A device is silent once it has sent nothing for
the rule's factor × its expected interval (its own, else its model's); its alert starts at
that instant, not at the check. Hearing the device again clears the alert at once
(alerts.alerting.note_heard); the check clears it too, in case that was missed. Gateways
likewise, from the gateways heard in uplinks' radio metadata.

Checks read every tenant through the owner connection (jobs run outside any request), so
each query filters by tenant explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from core.settings import Settings
from devices.activity import DEFAULT_INTERVAL_S
from devices.device_models import uplink_intervals

from .alert_store import AlertWriter, Subject, Tally, load_active
from .evaluate import Observation
from .rulebook import Rule, enabled_rules
from .rules import Gateway, Silence

log = logging.getLogger("civicsense.alerts.health")

_TENANTS_WITH = """
SELECT DISTINCT tenant_id FROM alert_rules WHERE enabled AND condition ->> 'kind' = %s
"""
_DEVICES = """
SELECT id, tenant_id, name, site, tags, model, last_seen_at,
       coalesce(expected_interval_s, (%s::jsonb ->> model)::integer, %s)
FROM devices
WHERE tenant_id = ANY(%s) AND status IN ('active', 'silent') AND last_seen_at IS NOT NULL
"""
_GATEWAYS = (
    "SELECT tenant_id, gateway_id, last_heard_at FROM gateways_heard WHERE tenant_id = ANY(%s)"
)


def _rules_of_kind(conn: psycopg.Connection, kind: str) -> dict[int, list[Rule]]:
    tenants = [row[0] for row in conn.execute(_TENANTS_WITH, (kind,))]
    by_tenant: dict[int, list[Rule]] = {}
    for rule in enabled_rules(conn, tenants):
        if rule.spec.condition.kind == kind:
            by_tenant.setdefault(rule.tenant_id, []).append(rule)
    return by_tenant


def _silences(
    conn: psycopg.Connection, rules: dict[int, list[Rule]], now: datetime
) -> Iterator[tuple[Rule, Subject, datetime | None]]:
    """(rule, device, the instant it fell silent or None) for every device in scope."""
    rows = conn.execute(_DEVICES, (Jsonb(uplink_intervals()), DEFAULT_INTERVAL_S, list(rules)))
    for device_id, tenant_id, name, site, tags, model, last_seen, interval_s in rows:
        subject = Subject(tenant_id, name, device_id=device_id, site=site)
        for rule in rules[tenant_id]:
            condition = rule.spec.condition
            assert isinstance(condition, Silence)
            if rule.spec.scope.matches(model, site, tags, device_id):
                since = last_seen + timedelta(seconds=condition.factor * interval_s)
                yield rule, subject, since if since <= now else None


def _gateway_silences(
    conn: psycopg.Connection, rules: dict[int, list[Rule]], now: datetime
) -> Iterator[tuple[Rule, Subject, datetime | None]]:
    for tenant_id, gateway_id, last_heard in conn.execute(_GATEWAYS, (list(rules),)):
        subject = Subject(tenant_id, gateway_id, gateway_id=gateway_id)
        for rule in rules[tenant_id]:
            condition = rule.spec.condition
            assert isinstance(condition, Gateway)
            since = last_heard + timedelta(minutes=condition.minutes)
            yield rule, subject, since if since <= now else None


def _apply(
    conn: psycopg.Connection,
    verdicts: list[tuple[Rule, Subject, datetime | None]],
    now: datetime,
) -> Tally:
    """Open an alert for each silent subject without one; clear those that spoke again.
    An alert already open for a silent subject is left as it is (no repeat per check)."""
    active = load_active(conn, {(rule.id, subject.key) for rule, subject, _ in verdicts})
    writer = AlertWriter(conn)
    for rule, subject, silent_since in verdicts:
        current = active.get((rule.id, subject.key))
        if silent_since is not None and current is None:
            writer.apply(rule, subject, None, [Observation(silent_since, True, False)])
        elif silent_since is None and current is not None:
            writer.apply(rule, subject, current, [Observation(now, False, True)])
    writer.flush()
    return writer.tally


def check(conn: psycopg.Connection, now: datetime | None = None) -> Tally:
    """Check every tenant's silence and gateway rules, in `conn`'s transaction."""
    now = now or datetime.now(UTC)
    verdicts = [*_silences(conn, _rules_of_kind(conn, "silence"), now),
                *_gateway_silences(conn, _rules_of_kind(conn, "gateway"), now)]  # fmt: skip
    return _apply(conn, verdicts, now)


def run_job(settings: Settings) -> None:
    """Scheduled check (privileged path)."""
    with psycopg.connect(settings.database_url) as conn:
        tally = check(conn)
    if tally.opened or tally.cleared:
        log.info("health alerts: %d opened, %d cleared", tally.opened, tally.cleared)
