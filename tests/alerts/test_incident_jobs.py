"""The scheduled incident jobs: SLA warnings and breaches recorded and notified once each
(even when two schedulers race), escalation of a breach to the town's administrators, and
the automatic closing 20 days after a resolution without a reaction."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts import incident_jobs, incidents
from alerts.workflow import Transition
from core.settings import Settings
from tests.kit.identity import SYSTEM, add_user
from tests.kit.incidents import incident_town, opened

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
# who hears of an SLA notice or a closing: whoever manages incidents, administrator included
MANAGERS = sorted(f"{name}@annecy.fr" for name in ("maire", "manager", "tech", "tech2"))


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    """annecy (24/7 service levels) with its staff and an administrator."""
    tenant_id = incident_town(conn)
    add_user(conn, tenant_id=tenant_id, email="maire@annecy.fr", roles=["tenant_admin"])
    return tenant_id


def _notices(conn: psycopg.Connection, incident: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT kind, details ->> 'milestone' FROM incident_events WHERE incident_id = %s"
        " AND kind IN ('sla_warning', 'sla_breach', 'escalated') ORDER BY id",
        (incident,),
    ).fetchall()
    return [(kind, milestone) for kind, milestone in rows]


def _notified(conn: psycopg.Connection, incident: int, event: str) -> list[str]:
    rows = conn.execute(
        "SELECT target FROM notifications WHERE incident_id = %s AND event = %s ORDER BY target",
        (incident, event),
    ).fetchall()
    return [target for (target,) in rows]


def test_a_clock_warns_then_breaches_once_each_and_the_breach_is_escalated(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    incident = opened(conn, town, T0)  # majeur: P1, GTI 4 h (warning at 3 h), GTR 12 h
    assert incident_jobs.check_sla(settings, now=T0 + timedelta(hours=2, minutes=59)) == 0
    assert incident_jobs.check_sla(settings, now=T0 + timedelta(hours=3)) == 1
    assert _notices(conn, incident) == [("sla_warning", "gti")]
    assert _notified(conn, incident, "sla_warning") == MANAGERS

    for _ in range(2):
        incident_jobs.check_sla(settings, now=T0 + timedelta(hours=4))
    assert _notices(conn, incident) == [
        ("sla_warning", "gti"), ("sla_breach", "gti"), ("escalated", "gti"),
    ]  # fmt: skip
    assert _notified(conn, incident, "sla_breach") == MANAGERS
    assert _notified(conn, incident, "escalated") == MANAGERS, "the administrator among them"
    assert incident_jobs.check_sla(settings, now=T0 + timedelta(hours=5)) == 0


def test_two_schedulers_at_once_record_each_notice_once(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    incident = opened(conn, town, T0, incident_class="bloquant")  # P0: GTI 1 h, GTR 4 h
    later = T0 + timedelta(hours=5)  # both clocks warned and breached
    start = threading.Barrier(2)
    counts: list[int] = []

    def run() -> None:
        start.wait()
        counts.append(incident_jobs.check_sla(settings, now=later))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 4, counts
    assert sorted(_notices(conn, incident)) == sorted([
        ("sla_warning", "gti"), ("sla_breach", "gti"), ("escalated", "gti"),
        ("sla_warning", "gtr"), ("sla_breach", "gtr"), ("escalated", "gtr"),
    ])  # fmt: skip
    assert _notified(conn, incident, "escalated") == sorted(MANAGERS * 2)  # gti and gtr


def test_reached_and_paused_clocks_owe_no_notice(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    acknowledge = ((Transition.ACKNOWLEDGE, T0 + timedelta(hours=1)),)
    acknowledged = opened(conn, town, T0, steps=acknowledge)
    waiting = opened(conn, town, T0, steps=(
        (Transition.START, T0 + timedelta(minutes=5)), (Transition.WAIT, T0 + timedelta(hours=1)),
    ))  # fmt: skip
    incident_jobs.check_sla(settings, now=T0 + timedelta(days=3))
    assert _notices(conn, acknowledged) == [
        ("sla_warning", "gtr"), ("sla_breach", "gtr"), ("escalated", "gtr"),
    ], "the GTI was met; the GTR ran on"  # fmt: skip
    assert _notices(conn, waiting) == [], "waiting since 1 h of 12: the clock stands still"


def _resolved(conn: psycopg.Connection, town: int) -> tuple[int, datetime]:
    resolved_at = T0 + timedelta(hours=2)
    steps = ((Transition.START, T0 + timedelta(hours=1)), (Transition.RESOLVE, resolved_at))
    return opened(conn, town, T0, steps=steps), resolved_at


def _state(conn: psycopg.Connection, incident: int) -> tuple[str, datetime | None]:
    row = conn.execute("SELECT state, closed_at FROM incidents WHERE id = %s", (incident,))
    return row.fetchone()  # type: ignore[return-value]


def test_a_resolved_incident_closes_itself_after_20_days_not_before(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    incident, resolved_at = _resolved(conn, town)
    due = resolved_at + timedelta(days=20)
    assert incident_jobs.auto_close(settings, now=due - timedelta(seconds=1)) == 0
    assert _state(conn, incident) == ("resolved", None)
    assert incident_jobs.auto_close(settings, now=due) == 1
    assert _state(conn, incident) == ("closed", due)
    step = conn.execute(
        "SELECT transition, actor FROM incident_events WHERE incident_id = %s"
        " AND kind = 'transition' ORDER BY id DESC LIMIT 1",
        (incident,),
    ).fetchone()
    assert step == ("auto_close", "scheduler")
    assert _notified(conn, incident, "closed") == MANAGERS
    assert incident_jobs.auto_close(settings, now=due + timedelta(days=1)) == 0


def test_a_comment_after_the_resolution_pushes_the_automatic_closing(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    incident, resolved_at = _resolved(conn, town)
    reaction = resolved_at + timedelta(days=5)
    incidents.comment(conn, SYSTEM, town, incident, "Toujours une odeur de gaz", at=reaction)
    assert incident_jobs.auto_close(settings, now=resolved_at + timedelta(days=20)) == 0
    assert _state(conn, incident)[0] == "resolved"
    assert incident_jobs.auto_close(settings, now=reaction + timedelta(days=20)) == 1
    assert _state(conn, incident)[0] == "closed"
