"""Incidents: opening, the workflow's transitions, re-qualification, assignment, comments,
attachments and publication, as functions on a psycopg connection.

The history (`incident_events`) is the truth. Every change appends an event, replays the
transition events with `workflow.replay` and caches what they add up to on the incident row
(state, milestones reached, resolution, due instants) for lists, reports and the scheduler;
a paused clock has no due instant (NULL), since it depends on when the pause ends. Each write
is audited and its notifications are queued (`alerts.notify`) in the caller's transaction.
Queries name the tenant themselves, so the functions are also right on the owner's
connection of the scheduled jobs, which row security does not confine. Requester contact
data goes to the incident row only: never to events, the audit trail or logs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from core import audit
from core.audit import Actor
from core.identity import repository as identity
from core.identity.permissions import permissions_of

from . import attachments, notify
from .incident_models import Requester
from .sla import DEFAULT_PRIORITY, IncidentClass, Milestone, Priority, SlaClock, SlaPolicy, as_utc
from .workflow import (
    TRANSITIONS,
    IllegalTransitionError,
    IncidentHistory,
    State,
    Step,
    Transition,
    allowed_transitions,
    replay,
)

__all__ = [
    "IncidentConflict",
    "IncidentError",
    "IncidentNotFound",
    "assign",
    "attach",
    "clocks",
    "comment",
    "events",
    "find",
    "get",
    "get_all",
    "history_of",
    "open_incident",
    "public_status",
    "publish",
    "requalify",
    "sla_policy",
    "steps_of",
    "transition",
]

Source = Literal["alert", "user", "request"]
#: The notification each transition sends (the others only go to the history).
_NOTIFIED: dict[Transition, str] = {
    Transition.RESOLVE: "resolved",
    Transition.CLOSE: "closed",
    Transition.AUTO_CLOSE: "closed",
}
#: States in which nothing is left to do: not counted as open.
SETTLED = frozenset({State.RESOLVED, State.CLOSED})


class IncidentError(Exception):
    """A request the incident cannot take; `status` is its HTTP answer."""

    status = 422


class IncidentNotFound(IncidentError):
    """No such incident in the tenant."""

    status = 404


class IncidentConflict(IncidentError):
    """The incident's state does not allow it (a closed incident is final)."""

    status = 409


def _now() -> datetime:
    return datetime.now(UTC)


def _target(incident_id: int) -> str:
    return f"incident:{incident_id}"


def _user_id(actor: Actor) -> int | None:
    """The users row behind the actor, if it is one (an API key's id is not a user's)."""
    return actor.id if actor.kind == "user" else None


def sla_policy(conn: psycopg.Connection, tenant_id: int) -> SlaPolicy:
    """The tenant's service levels (the defaults when it set none)."""
    row = conn.execute(
        "SELECT sla_policy FROM alert_settings WHERE tenant_id = %s", (tenant_id,)
    ).fetchone()
    return SlaPolicy() if row is None else SlaPolicy.model_validate(row[0])


def clocks(
    policy: SlaPolicy, history: IncidentHistory, priority: Priority | str
) -> dict[Milestone, SlaClock]:
    """Both clocks of an incident with this history, under its current priority."""
    return {m: history.clock(policy, Priority(priority), m) for m in Milestone}


def _cache(policy: SlaPolicy, history: IncidentHistory, priority: Priority | str) -> dict[str, Any]:
    """The incident row's columns that the history determines (closed_at aside)."""
    clock = clocks(policy, history, priority)
    resolution = history.reached.get(Milestone.GTR)
    return {
        "state": history.state.value,
        "gti_due_at": clock[Milestone.GTI].deadline(),
        "gtr_due_at": clock[Milestone.GTR].deadline(),
        "gti_reached_at": history.reached.get(Milestone.GTI),
        "gtr_reached_at": resolution,
        "resolved_at": resolution,  # the GTR is reached exactly while resolved or closed
    }


def _incident(
    conn: psycopg.Connection, tenant_id: int, incident_id: int, *, lock: bool = False
) -> dict[str, Any]:
    query = "SELECT * FROM incidents WHERE tenant_id = %s AND id = %s"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query + (" FOR UPDATE" if lock else ""), (tenant_id, incident_id))
        found = row.fetchone()
    if found is None:
        raise IncidentNotFound(f"no incident {incident_id}")
    return found


def find(conn: psycopg.Connection, tenant_id: int, incident_id: int) -> dict[str, Any]:
    """The incident's row (requester included), or IncidentNotFound."""
    return _incident(conn, tenant_id, incident_id)


def _workable(
    conn: psycopg.Connection, tenant_id: int, incident_id: int, doing: str
) -> dict[str, Any]:
    """The incident, locked against concurrent changes; 409 once closed."""
    incident = _incident(conn, tenant_id, incident_id, lock=True)
    if incident["state"] == State.CLOSED:
        raise IncidentConflict(
            f"incident {incident_id} is closed, which is final: cannot {doing} it "
            "(a problem that comes back is a new incident)"
        )
    return incident


def steps_of(conn: psycopg.Connection, incident_ids: list[int]) -> dict[int, list[Step]]:
    """The recorded transitions of each incident, in order."""
    found: dict[int, list[Step]] = {incident_id: [] for incident_id in incident_ids}
    rows = conn.execute(
        "SELECT incident_id, transition, at FROM incident_events WHERE incident_id = ANY(%s)"
        " AND kind = 'transition' ORDER BY incident_id, at, id",
        (incident_ids,),
    ).fetchall()
    for incident_id, name, at in rows:
        found[incident_id].append(Step(Transition(name), at))
    return found


def history_of(conn: psycopg.Connection, incident: dict[str, Any]) -> IncidentHistory:
    """What the incident's recorded transitions add up to."""
    return replay(incident["opened_at"], steps_of(conn, [incident["id"]])[incident["id"]])


def _event(
    conn: psycopg.Connection, actor: Actor, incident: dict[str, Any], kind: str, *,
    at: datetime, transition: Transition | None = None, body: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Append a line to the incident's history; the line."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO incident_events (tenant_id, incident_id, at, kind, transition, actor,"
            " actor_id, body, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id, at, kind, transition, actor, body, details",
            (incident["tenant_id"], incident["id"], at, kind, transition, actor.label,
             _user_id(actor), body, Jsonb(details or {})),
        ).fetchone()  # fmt: skip
    assert row is not None
    return row


def _update(
    conn: psycopg.Connection, incident: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """Set `values` (column names from this module only) on the incident; the new row."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in values
    )
    query = sql.SQL(
        "UPDATE incidents SET {}, updated_at = now() WHERE tenant_id = %(tenant_id)s"
        " AND id = %(id)s RETURNING *"
    ).format(assignments)
    params = {**values, "tenant_id": incident["tenant_id"], "id": incident["id"]}
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    assert row is not None
    return row


def _audit(
    conn: psycopg.Connection, actor: Actor, incident: dict[str, Any], action: str,
    details: dict[str, Any],
) -> None:  # fmt: skip
    audit.record(
        conn, actor, f"incidents.{action}", target=_target(incident["id"]),
        tenant_id=incident["tenant_id"], details=details,
    )  # fmt: skip


def _requester(requester: dict[str, Any] | Requester | None) -> Jsonb | None:
    if requester is None:
        return None
    try:
        checked = Requester.model_validate(requester)
    except ValidationError as exc:  # the message names fields, never their values
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
        raise IncidentError(f"requester: invalid {fields}") from None
    return Jsonb(checked.model_dump(exclude_none=True))


def open_incident(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    *,
    title: str,
    incident_class: IncidentClass | str,
    priority: Priority | str | None = None,
    source: Source,
    category: str = "other",
    description: str | None = None,
    alert_id: int | None = None,
    device_id: int | None = None,
    site: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    requester: dict[str, Any] | Requester | None = None,
    public: bool = False,
    opened_at: datetime | None = None,
    planned_start: datetime | None = None,
    planned_end: datetime | None = None,
) -> int:
    """Open an incident with its clocks running from `opened_at` (now by default); its id.

    The priority defaults to the class's. The due instants come from the tenant's SLA
    policy; the opening is recorded in the history and the audit trail and notified, all in
    the caller's transaction (the rule engine opens incidents from alerts this way).
    """
    kind = IncidentClass(incident_class)
    level = Priority(priority) if priority is not None else DEFAULT_PRIORITY[kind]
    opened = as_utc(opened_at, "opened_at") if opened_at is not None else _now()
    contact = _requester(requester)
    if (
        device_id is not None
        and not conn.execute(
            "SELECT 1 FROM devices WHERE tenant_id = %s AND id = %s", (tenant_id, device_id)
        ).fetchone()
    ):
        raise IncidentError(f"no device {device_id} in this town")
    cached = _cache(sla_policy(conn, tenant_id), replay(opened, []), level)
    params = {
        "tenant_id": tenant_id, "title": title, "description": description,
        "category": category, "incident_class": kind.value, "priority": level.value,
        "source": source, "alert_id": alert_id, "device_id": device_id, "site": site,
        "lat": lat, "lon": lon, "requester": contact, "created_by": _user_id(actor),
        "public": public, "planned_start": planned_start, "planned_end": planned_end,
        "opened_at": opened, **cached,
    }  # fmt: skip
    query = sql.SQL("INSERT INTO incidents ({}) VALUES ({}) RETURNING *").format(
        sql.SQL(", ").join(map(sql.Identifier, params)),
        sql.SQL(", ").join(map(sql.Placeholder, params)),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        incident = cur.execute(query, params).fetchone()
    assert incident is not None
    facts = {"source": source, "incident_class": kind.value, "priority": level.value}
    _event(conn, actor, incident, "opened", at=opened, details=facts)
    _audit(conn, actor, incident, "open", {
        **facts, "alert_id": alert_id, "device_id": device_id, "public": public,
        "requester": contact is not None,
    })  # fmt: skip
    notify.incident_event(conn, incident["id"], "opened")
    return int(incident["id"])


def transition(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    incident_id: int,
    transition: Transition | str,
    *,
    reason: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Apply a workflow transition at `at` (now by default); the updated incident.

    Raises IllegalTransitionError when it does not apply to the incident's state, and
    IncidentError when `at` is before the incident's previous step.
    """
    step = Step(Transition(transition), at if at is not None else _now())
    incident = _incident(conn, tenant_id, incident_id, lock=True)
    try:
        recorded = steps_of(conn, [incident_id])[incident_id]
        history = replay(incident["opened_at"], [*recorded, step])
    except IllegalTransitionError:
        raise
    except ValueError as exc:
        raise IncidentError(str(exc)) from None
    moves = {"transition": step.transition.value, "from": incident["state"], "to": history.state}
    _event(
        conn, actor, incident, "transition", at=step.at, transition=step.transition, body=reason,
        details={"from": incident["state"], "to": history.state.value},
    )  # fmt: skip
    closed_at = step.at if history.state is State.CLOSED else None
    cached = _cache(sla_policy(conn, tenant_id), history, incident["priority"])
    updated = _update(conn, incident, {**cached, "closed_at": closed_at})
    _audit(conn, actor, incident, "transition", {**moves, "reason": reason})
    if (notice := _NOTIFIED.get(step.transition)) is not None:
        notify.incident_event(conn, incident_id, notice)
    return updated


def requalify(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    incident_id: int,
    *,
    incident_class: IncidentClass | str,
    priority: Priority | str | None = None,
    reason: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Change the class and priority (by default the class's), with the reason why; the
    updated incident. The new priority's delays count from the opening."""
    if len(reason.strip()) < 3:
        raise IncidentError("a re-qualification needs its reason (3 characters at least)")
    kind = IncidentClass(incident_class)
    level = Priority(priority) if priority is not None else DEFAULT_PRIORITY[kind]
    incident = _workable(conn, tenant_id, incident_id, "re-qualify")
    before = {"incident_class": incident["incident_class"], "priority": incident["priority"]}
    after = {"incident_class": kind.value, "priority": level.value}
    if before == after:
        raise IncidentError(f"incident {incident_id} is already {kind} {level}: nothing changes")
    moment = at if at is not None else _now()
    change = {"from": before, "to": after}
    _event(conn, actor, incident, "requalified", at=moment, body=reason, details=change)
    cached = _cache(sla_policy(conn, tenant_id), history_of(conn, incident), level)
    updated = _update(conn, incident, {**after, **cached})
    _audit(conn, actor, incident, "requalify", {**change, "reason": reason})
    notify.incident_event(conn, incident_id, "requalified", details=change)
    return updated


def _check_assignee(conn: psycopg.Connection, tenant_id: int, user_id: int) -> None:
    user = identity.user_by_id(conn, user_id)
    if user is None or user["tenant_id"] != tenant_id or not user["active"]:
        raise IncidentError(f"user {user_id} is not an active user of this town")
    if "incidents:manage" not in permissions_of(user["roles"], user["grants"]):
        raise IncidentError(f"user {user_id} may not work on incidents (incidents:manage)")


def assign(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    incident_id: int,
    assignee_id: int | None,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Give the incident to an active user of the town who may work on incidents (None:
    to nobody); the updated incident. Assigning it to its assignee changes nothing."""
    incident = _workable(conn, tenant_id, incident_id, "assign")
    if assignee_id is not None:
        _check_assignee(conn, tenant_id, assignee_id)
    if incident["assignee_id"] == assignee_id:
        return incident
    change = {"from": incident["assignee_id"], "to": assignee_id}
    _event(conn, actor, incident, "assigned", at=at if at is not None else _now(), details=change)
    updated = _update(conn, incident, {"assignee_id": assignee_id})
    _audit(conn, actor, incident, "assign", change)
    if assignee_id is not None:
        notify.incident_event(conn, incident_id, "assigned", details={"assignee_id": assignee_id})
    return updated


def _react(conn: psycopg.Connection, incident: dict[str, Any], at: datetime) -> bool:
    """Count a comment or an attachment on a resolved incident as a reaction: it starts
    the wait before the automatic closing again. Whether it was one."""
    if incident["state"] != State.RESOLVED:
        return False
    _update(conn, incident, {"last_reaction_at": at})
    return True


def comment(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    incident_id: int,
    body: str,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Add a comment to the incident's history; the history line."""
    incident = _workable(conn, tenant_id, incident_id, "comment on")
    moment = at if at is not None else _now()
    line = _event(conn, actor, incident, "comment", at=moment, body=body)
    reaction = _react(conn, incident, moment)
    _audit(conn, actor, incident, "comment", {"event_id": line["id"], "reaction": reaction})
    return line


def attach(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    incident_id: int,
    *,
    filename: str,
    file: attachments.StoredFile,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Store a checked photo or document with the incident; its description. The history
    and the audit trail identify it by its SHA-256."""
    incident = _workable(conn, tenant_id, incident_id, "attach files to")
    stored = attachments.store(
        conn, tenant_id=tenant_id, incident_id=incident_id, filename=filename, file=file,
        uploaded_by=actor.label,
    )  # fmt: skip
    moment = at if at is not None else _now()
    facts = {"attachment_id": stored["id"], "content_type": file.content_type,
             "size": stored["size"], "sha256": stored["sha256"]}  # fmt: skip
    _event(conn, actor, incident, "attachment", at=moment, details={**facts, "filename": filename})
    reaction = _react(conn, incident, moment)
    _audit(conn, actor, incident, "attach", {**file.audit, **facts, "reaction": reaction})
    return stored


def publish(
    conn: psycopg.Connection,
    actor: Actor,
    tenant_id: int,
    incident_id: int,
    changes: dict[str, Any],
) -> dict[str, Any]:
    """Set `public` and/or the planned intervention (`planned_start`, `planned_end`; None
    clears them); the updated incident."""
    incident = _workable(conn, tenant_id, incident_id, "publish")
    values: dict[str, Any] = {
        k: changes[k] for k in ("public", "planned_start", "planned_end") if k in changes
    }
    if "planned_start" in values and values["planned_start"] is None:
        values.setdefault("planned_end", None)
    start = values.get("planned_start", incident["planned_start"])
    end = values.get("planned_end", incident["planned_end"])
    if end is not None and (start is None or end <= start):
        raise IncidentError("planned_end needs a planned_start before it")
    if not values:
        return incident
    updated = _update(conn, incident, values)
    shown = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
    _audit(conn, actor, incident, "publish", shown)
    return updated


def _clock_read(clock: SlaClock, at: datetime) -> dict[str, Any]:
    moment = max(as_utc(at, "at"), clock.opened_at)
    return {
        "state": clock.state(moment),
        "delay_seconds": clock.delay.total_seconds(),
        "deadline": clock.deadline(),
        "remaining_seconds": (
            None if clock.reached_at is not None else clock.remaining(moment).total_seconds()
        ),
        "reached_at": clock.reached_at,
    }


def get(
    conn: psycopg.Connection, tenant_id: int, incident_id: int, *, at: datetime | None = None
) -> dict[str, Any]:
    """One incident with its clocks at `at` (now by default), the transitions that apply
    and its attachments."""
    incident = _incident(conn, tenant_id, incident_id)
    history = history_of(conn, incident)
    moment = at if at is not None else _now()
    running = clocks(sla_policy(conn, tenant_id), history, incident["priority"])
    return {
        **incident,
        "clocks": {m.value: _clock_read(clock, moment) for m, clock in running.items()},
        "allowed_transitions": [
            t for t in allowed_transitions(history.state) if not TRANSITIONS[t].automatic
        ],
        "attachments": attachments.listed(conn, tenant_id, incident_id),
    }


_LIST = """
SELECT * FROM incidents
WHERE tenant_id = %(tenant_id)s
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))
  AND (%(priority)s::text IS NULL OR priority = %(priority)s)
  AND (%(incident_class)s::text IS NULL OR incident_class = %(incident_class)s)
  AND (%(category)s::text IS NULL OR category = %(category)s)
  AND (%(assignee_id)s::bigint IS NULL OR assignee_id = %(assignee_id)s)
  AND (NOT %(open_only)s OR state NOT IN ('resolved', 'closed'))
ORDER BY opened_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""


def get_all(
    conn: psycopg.Connection,
    tenant_id: int,
    *,
    states: list[str] | None = None,
    priority: str | None = None,
    incident_class: str | None = None,
    category: str | None = None,
    assignee_id: int | None = None,
    open_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The tenant's incidents, newest first; `open_only`: neither resolved nor closed."""
    params = {
        "tenant_id": tenant_id, "states": states or None, "priority": priority,
        "incident_class": incident_class, "category": category, "assignee_id": assignee_id,
        "open_only": open_only, "limit": limit, "offset": offset,
    }  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST, params).fetchall()


def events(
    conn: psycopg.Connection, tenant_id: int, incident_id: int, *, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The incident's history, in order."""
    _incident(conn, tenant_id, incident_id)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, at, kind, transition, actor, body, details FROM incident_events"
            " WHERE tenant_id = %s AND incident_id = %s ORDER BY at, id LIMIT %s OFFSET %s",
            (tenant_id, incident_id, limit, offset),
        ).fetchall()


def public_status(conn: psycopg.Connection, tenant_id: int, limit: int) -> list[dict[str, Any]]:
    """The town's public incidents not closed yet (planned interventions among them), newest
    first: only what a resident may read."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT title, category, state, site, opened_at, planned_start, planned_end"
            " FROM incidents WHERE tenant_id = %s AND public AND state <> 'closed'"
            " ORDER BY opened_at DESC, id DESC LIMIT %s",
            (tenant_id, limit),
        ).fetchall()
