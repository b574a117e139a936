"""Payment sessions: one merge rule for every source, and the built-in session service.

Every source (operator webhooks, pay-station batches, the built-in API) hands over
`SessionFacts` with the instant they were true (`occurred_at`). `merge` keys the
session on (source, provider, external id) and applies them so that the order of
arrival does not matter:

- facts newer than the last applied ones replace plate, zone, bay, paid end and amount;
- older facts only fill what is still missing (an extension arriving after the stop
  does not reopen the session);
- a stop is final: `stopped_at` is never cleared, and the amount it carries wins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from core import audit, hours
from core.audit import Actor

from . import changes, tariffs
from .places import NotFound
from .plates import normalise_plate
from .session_models import SessionFacts, SessionStart

Outcome = Literal["created", "updated", "unchanged"]
BUILTIN = "civicsense"


class Refused(ValueError):
    """The facts cannot be applied (unknown zone or bay, bad plate, closed session...)."""


SESSION_COLUMNS = """
s.id, s.source, s.provider, s.external_id, s.plate, z.code AS zone, b.code AS bay,
s.started_at, s.ends_at, s.stopped_at, s.amount, s.service_amount, s.currency
"""
_SESSION = (
    "SELECT " + SESSION_COLUMNS + " FROM parking_sessions s"
    " JOIN parking_zones z ON z.id = s.zone_id LEFT JOIN parking_bays b ON b.id = s.bay_id"
)
_MERGED = ("plate", "plate_key", "zone_id", "bay_id", "ends_at", "stopped_at", "amount",
           "service_amount")  # fmt: skip


def _zone_and_bay(conn: psycopg.Connection, zone: str, bay: str | None) -> tuple[int, int | None]:
    row = conn.execute("SELECT id FROM parking_zones WHERE code = %s", (zone,)).fetchone()
    if row is None:
        raise Refused(f"unknown zone {zone!r}")
    if bay is None:
        return int(row[0]), None
    found = conn.execute(
        "SELECT id FROM parking_bays WHERE code = %s AND zone_id = %s", (bay, row[0])
    ).fetchone()
    if found is None:
        raise Refused(f"no bay {bay!r} in zone {zone!r}")
    return int(row[0]), int(found[0])


def _values(conn: psycopg.Connection, facts: SessionFacts) -> dict[str, Any]:
    try:
        plate = normalise_plate(facts.plate)
    except ValueError as exc:
        raise Refused(f"plate: {exc}") from None
    zone_id, bay_id = _zone_and_bay(conn, facts.zone, facts.bay)
    return {
        "plate": plate.display, "plate_key": plate.key, "zone_id": zone_id, "bay_id": bay_id,
        "started_at": facts.started_at, "ends_at": facts.ends_at, "stopped_at": facts.stopped_at,
        "amount": facts.amount, "service_amount": facts.service_amount,
    }  # fmt: skip


def _merged(current: dict[str, Any], new: dict[str, Any], newer: bool) -> dict[str, Any]:
    """The columns that change when `new` facts meet the `current` row (module docstring)."""
    result = {}
    for column in _MERGED:
        value = new[column]
        if column == "stopped_at":
            value = current[column] or value
        elif column == "amount" and current["stopped_at"] is not None and not new["stopped_at"]:
            value = current[column]  # the stop's amount is final
        elif not newer or value is None:
            value = current[column] if current[column] is not None else value
        if value != current[column]:
            result[column] = value
    if new["started_at"] < current["started_at"]:
        result["started_at"] = new["started_at"]
    return result


def merge(
    conn: psycopg.Connection,
    *,
    tenant_id: int,
    source: str,
    provider: str,
    facts: SessionFacts,
    occurred_at: datetime,
) -> tuple[Outcome, int]:
    """Apply facts true at `occurred_at` to their session; (outcome, session id)."""
    new = _values(conn, facts)
    key = (source, provider, facts.id)
    with conn.cursor(row_factory=dict_row) as cur:
        current = cur.execute(
            "SELECT * FROM parking_sessions WHERE tenant_id = %s AND source = %s"
            " AND provider = %s AND external_id = %s FOR UPDATE",
            (tenant_id, *key),
        ).fetchone()
    if current is None:
        columns = {"tenant_id": tenant_id, "source": source, "provider": provider,
                   "external_id": facts.id, "last_event_at": occurred_at, **new}  # fmt: skip
        row = conn.execute(
            f"INSERT INTO parking_sessions ({', '.join(columns)})"
            f" VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id",
            tuple(columns.values()),
        ).fetchone()
        assert row is not None
        changes.announce(conn, tenant_id, [new["zone_id"]])
        return "created", int(row[0])
    newer = occurred_at >= current["last_event_at"]
    update = _merged(current, new, newer)
    if newer:
        update["last_event_at"] = occurred_at
    if not update or set(update) == {"last_event_at"}:
        return "unchanged", int(current["id"])
    if update.get("ends_at") is not None and update["ends_at"] <= update.get(
        "started_at", current["started_at"]
    ):
        raise Refused("the paid end would be before the start")
    assignments = ", ".join(f"{column} = %s" for column in update)
    conn.execute(
        f"UPDATE parking_sessions SET {assignments}, updated_at = now() WHERE id = %s",
        (*update.values(), current["id"]),
    )
    changes.announce(conn, tenant_id, {current["zone_id"], new["zone_id"]})
    return "updated", int(current["id"])


def get(conn: psycopg.Connection, session_id: int) -> dict[str, Any]:
    """One session, or NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SESSION + " WHERE s.id = %s", (session_id,)).fetchone()
    if row is None:
        raise NotFound(f"no session {session_id}")
    return row


def _zone_rules(conn: psycopg.Connection, code: str) -> tuple[hours.RegulatedHours, tariffs.Tariff]:
    row = conn.execute(
        "SELECT hours, tariff FROM parking_zones WHERE code = %s", (code,)
    ).fetchone()
    if row is None:
        raise Refused(f"unknown zone {code!r}")
    return hours.RegulatedHours.model_validate(row[0]), tariffs.Tariff.model_validate(row[1])


def _paid_end(
    regulated: hours.RegulatedHours, start: datetime, minutes: int, zone: str
) -> datetime:
    """When `minutes` of regulated time from `start` run out."""
    try:
        return hours.add_regulated(regulated, start, minutes * 60)
    except ValueError:
        raise Refused(f"zone {zone} is not regulated in the coming year: nothing to pay") from None


def start(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, body: SessionStart, now: datetime
) -> dict[str, Any]:
    """Start a built-in session now; with a duration, paid until that much regulated time."""
    regulated, tariff = _zone_rules(conn, body.zone)
    ends_at = None
    if body.duration_minutes is not None:
        if body.duration_minutes > tariff.max_minutes:
            raise Refused(f"zone {body.zone} allows at most {tariff.max_minutes} minutes")
        ends_at = _paid_end(regulated, now, body.duration_minutes, body.zone)
    facts = SessionFacts(id=uuid.uuid4().hex, plate=body.plate, zone=body.zone, bay=body.bay,
                         started_at=now, ends_at=ends_at)  # fmt: skip
    _, session_id = merge(conn, tenant_id=tenant_id, source="builtin", provider=BUILTIN,
                          facts=facts, occurred_at=now)  # fmt: skip
    audit.record(conn, actor, "parking.session.start", target=str(session_id),
                 details={"zone": body.zone, "bay": body.bay})  # fmt: skip
    return get(conn, session_id)


def _open_builtin(conn: psycopg.Connection, session_id: int) -> dict[str, Any]:
    session = get(conn, session_id)
    if session["source"] != "builtin":
        raise Refused("only sessions started here can be changed here; the operator's own")
    if session["stopped_at"] is not None:
        raise Refused("the session is stopped")
    return session


def _facts(session: dict[str, Any], **changed: Any) -> SessionFacts:
    fields = ("plate", "zone", "bay", "started_at", "ends_at", "stopped_at", "amount")
    values = {field: session[field] for field in fields}
    return SessionFacts(id=session["external_id"], **{**values, **changed})


def extend(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, session_id: int, minutes: int,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """More paid time, counted in regulated time from the current paid end (or now)."""
    session = _open_builtin(conn, session_id)
    if session["ends_at"] is None:
        raise Refused("this session runs until it is stopped: nothing to extend")
    regulated, tariff = _zone_rules(conn, session["zone"])
    base = max(session["ends_at"], now)
    ends_at = _paid_end(regulated, base, minutes, session["zone"])
    paid = hours.regulated_seconds(regulated, session["started_at"], ends_at) / 60
    if paid > tariff.max_minutes + 1e-9:
        raise Refused(f"zone {session['zone']} allows at most {tariff.max_minutes} minutes")
    merge(conn, tenant_id=tenant_id, source="builtin", provider=BUILTIN,
          facts=_facts(session, ends_at=ends_at), occurred_at=now)  # fmt: skip
    audit.record(conn, actor, "parking.session.extend", target=str(session_id),
                 details={"minutes": minutes})  # fmt: skip
    return get(conn, session_id)


def stop(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, session_id: int, now: datetime
) -> dict[str, Any]:
    """Stop now; the amount is the zone's tariff for the regulated time really parked."""
    session = _open_builtin(conn, session_id)
    regulated, tariff = _zone_rules(conn, session["zone"])
    minutes = hours.regulated_seconds(regulated, session["started_at"], now) / 60
    amount: Decimal = tariffs.amount_due(tariff, minutes)
    merge(conn, tenant_id=tenant_id, source="builtin", provider=BUILTIN,
          facts=_facts(session, stopped_at=now, amount=amount), occurred_at=now)  # fmt: skip
    audit.record(conn, actor, "parking.session.stop", target=str(session_id),
                 details={"amount": str(amount)})  # fmt: skip
    return get(conn, session_id)


def search(
    conn: psycopg.Connection, *, zone: str | None, active_at: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Sessions, newest first; `active_at`: only those covering that instant."""
    query = (
        _SESSION
        + """
    WHERE (%(zone)s::text IS NULL OR z.code = %(zone)s)
      AND (%(at)s::timestamptz IS NULL OR (s.started_at <= %(at)s
           AND (s.stopped_at IS NULL OR s.stopped_at > %(at)s)
           AND (s.ends_at IS NULL OR s.ends_at > %(at)s)))
    ORDER BY s.started_at DESC, s.id DESC LIMIT %(limit)s
    """
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"zone": zone, "at": active_at, "limit": limit}).fetchall()
