"""Alerts in the database: the active alert of a rule and subject, and what observations do
to it (alerts.evaluate), written as they happen.

An alert that opens under a rule with `open_incident` opens its incident in the same
transaction (alerts.incidents.open_incident, which queues the notifications: nothing here
waits on a mail server). Repeats and pending updates are written once per batch, not per
observation. Two ingest workers racing on one rule and subject are serialised by the
active alerts' row locks and, for a new alert, by the one-active-alert unique index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

import psycopg

from core.audit import Actor

from . import incidents
from .evaluate import Active, Change, Observation, step
from .rulebook import Rule

ENGINE = Actor("system", "alerts")

_ACTIVE = """
SELECT rule_id, subject, id, state, started_at, last_seen_at, opened_at, repeats, value
FROM alerts
WHERE state <> 'cleared' AND (rule_id, subject) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))
ORDER BY id FOR UPDATE
"""
_INSERT = """
INSERT INTO alerts (tenant_id, rule_id, subject, device_id, gateway_id, state, started_at,
                    opened_at, last_seen_at, repeats, value)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (rule_id, subject) WHERE state <> 'cleared' DO NOTHING
RETURNING id
"""
_HANDLED = """
SELECT i.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
WHERE a.rule_id = %s AND a.subject = %s AND i.state NOT IN ('resolved', 'closed')
ORDER BY i.id DESC LIMIT 1
"""
_UPDATE = """
UPDATE alerts SET state = %s, opened_at = %s, last_seen_at = %s, repeats = %s, value = %s
WHERE id = %s
"""


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about: a device or a gateway, with a label for people."""

    tenant_id: int
    label: str
    device_id: int | None = None
    gateway_id: str | None = None
    site: str | None = None

    @property
    def key(self) -> str:
        """The one-active-alert key with the rule id."""
        return (
            f"device:{self.device_id}"
            if self.device_id is not None
            else f"gateway:{self.gateway_id}"
        )


def load_active(
    conn: psycopg.Connection, keys: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], Active]:
    """The active (pending or open) alerts of these (rule id, subject key) pairs, locked."""
    pairs = list(keys)
    if not pairs:
        return {}
    rows = conn.execute(_ACTIVE, ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
    active = {}
    for rule_id, key, alert_id, state, started, seen, opened, repeats, value in rows:
        active[rule_id, key] = Active(state, started, seen, opened, repeats, value, alert_id)
    return active


def _update_values(alert: Active) -> tuple[object, ...]:
    return (alert.state, alert.opened_at, alert.last_seen_at, alert.repeats, alert.value, alert.id)


@dataclass
class Tally:
    """What a batch of observations did, for logs and benchmarks."""

    observations: int = 0
    opened: int = 0
    repeated: int = 0
    cleared: int = 0
    incidents: int = 0


class AlertWriter:
    """Applies observations to alerts inside the caller's transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.tally = Tally()
        self._deferred: list[Active] = []

    def apply(
        self,
        rule: Rule,
        subject: Subject,
        active: Active | None,
        observations: Iterable[Observation],
        hold_for: timedelta = timedelta(0),
    ) -> Active | None:
        """Feed `observations` (in time order) to the alert; returns the active alert after."""
        dirty = False
        for seen in observations:
            self.tally.observations += 1
            after, change = step(active, seen, hold_for)
            if change is Change.OPENED:
                active = self._open(rule, subject, after)
                dirty = False
            elif change is Change.CLEARED and active is not None:
                self._clear(active, seen)
                active, dirty = None, False
            elif change is Change.DROPPED and active is not None:
                if active.id is not None:
                    self.conn.execute("DELETE FROM alerts WHERE id = %s", (active.id,))
                active, dirty = None, False
            elif change is Change.PENDING and after is not None and after.id is None:
                active, dirty = self._insert(rule, subject, after), False
            elif change in (Change.PENDING, Change.REPEATED):
                self.tally.repeated += change is Change.REPEATED
                active, dirty = after, True
        if dirty and active is not None:
            self._deferred.append(active)
        return active

    def flush(self) -> None:
        """Write the repeats and pending updates deferred by `apply`, in one round trip."""
        if self._deferred:
            with self.conn.cursor() as cur:
                cur.executemany(_UPDATE, [_update_values(a) for a in self._deferred])
            self._deferred.clear()

    def _insert(self, rule: Rule, subject: Subject, alert: Active) -> Active:
        row = self.conn.execute(_INSERT, (
            subject.tenant_id, rule.id, subject.key, subject.device_id, subject.gateway_id,
            alert.state, alert.started_at, alert.opened_at, alert.last_seen_at, alert.repeats,
            alert.value,
        )).fetchone()  # fmt: skip
        if row is None:  # another worker opened it meanwhile: count this one as a repeat
            existing = load_active(self.conn, [(rule.id, subject.key)])[(rule.id, subject.key)]
            repeated = replace(existing, last_seen_at=alert.last_seen_at,
                               repeats=existing.repeats + 1, value=alert.value)  # fmt: skip
            self._update(repeated)
            return repeated
        return replace(alert, id=row[0])

    def _update(self, alert: Active) -> None:
        self.conn.execute(_UPDATE, _update_values(alert))

    def _open(self, rule: Rule, subject: Subject, after: Active | None) -> Active:
        assert after is not None
        if after.id is None:
            opened = self._insert(rule, subject, after)
            if opened.repeats > after.repeats:  # another worker had opened it meanwhile
                return opened
        else:
            opened = after
            self._update(opened)
        self.tally.opened += 1
        if rule.spec.open_incident and rule.spec.incident_class is not None:
            self._open_incident(rule, subject, opened)
        return opened

    def _open_incident(self, rule: Rule, subject: Subject, alert: Active) -> None:
        """Open the alert's incident, or join the one this rule opened on this subject if
        it is still being handled (a flapping sensor makes one incident, not one per flap)."""
        spec = rule.spec
        assert spec.incident_class is not None and alert.id is not None
        value = "" if alert.value is None else f" (valeur {alert.value:g})"
        row = self.conn.execute(_HANDLED, (rule.id, subject.key)).fetchone()
        if row is not None:
            incident_id = row[0]
            incidents.comment(self.conn, ENGINE, subject.tenant_id, incident_id,
                              f"L'alerte « {spec.name} » s'est reproduite{value}.",
                              at=alert.opened_at)  # fmt: skip
        else:
            incident_id = incidents.open_incident(
                self.conn, ENGINE, subject.tenant_id,
                title=f"{spec.name} : {subject.label}"[:200],
                description=f"Alerte « {spec.name} » sur {subject.label}{value}.",
                incident_class=spec.incident_class, priority=spec.priority, source="alert",
                category=spec.category, alert_id=alert.id, device_id=subject.device_id,
                site=subject.site, opened_at=alert.opened_at,
            )  # fmt: skip
            self.tally.incidents += 1
        self.conn.execute("UPDATE alerts SET incident_id = %s WHERE id = %s",
                          (incident_id, alert.id))  # fmt: skip

    def _clear(self, alert: Active, seen: Observation) -> None:
        self.tally.cleared += 1
        if alert.id is None:
            return
        self.conn.execute(
            "UPDATE alerts SET state = 'cleared', cleared_at = %s, value = %s WHERE id = %s",
            (seen.at, seen.value, alert.id),
        )
