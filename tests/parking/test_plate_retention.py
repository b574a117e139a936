"""Plates past their retention become pseudonyms everywhere, and the statistics built on
them (reconciliation, revenue, sessions per zone, distinct vehicles, repeat visits) do not
change. Time travels by giving the retention job a `now` in the future."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from core.audit import Actor
from core.db import APP_ROLE
from core.privacy import retention
from core.settings import Settings
from parking import enforcement, intake, reports, sessions
from parking.enforcement import ActionCreate
from parking.session_models import ProviderEvent, SessionFacts
from tests.kit.parking import ALWAYS, parking_town

# the same car typed three ways; the others as operators send them
PLATES = ("AB-123-CD", "ab 123 cd", "ab123cd", "EF-456-GH", "IJ-789-KL", "MN-012-OP", "1234 QR 75")
KEYS = ("AB123CD", "EF456GH", "IJ789KL", "MN012OP", "1234QR75")
DAYS = 120


@contextmanager
def as_tenant(url: str, tenant_id: int) -> Iterator[psycopg.Connection]:
    """A connection of the application role for one town (row-level security on)."""
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        conn.execute("SELECT set_config('civicsense.tenant_id', %s, false)", (str(tenant_id),))
        yield conn
        conn.commit()


def _plant(url: str, tenant_id: int, slug: str, today: datetime) -> None:
    """Sessions over DAYS days (operator events and pay-station sessions), plate checks and
    enforcement actions (written today: the audit trail dates them itself)."""
    with as_tenant(url, tenant_id) as conn:
        for day in range(DAYS, -1, -1):
            start = today - timedelta(days=day, hours=3)
            for n in range(1 + day % 3):
                plate = PLATES[(day + n) % len(PLATES)]
                stop = start + timedelta(minutes=30 + 10 * n)
                facts = SessionFacts(id=f"s{day}-{n}", plate=plate, zone="Z1", started_at=start,
                                     stopped_at=stop, amount=Decimal("1.50") + n)  # fmt: skip
                if n % 2:
                    sessions.merge(conn, tenant_id=tenant_id, source="pay_station",
                                   provider="horodateur-1", facts=facts,
                                   occurred_at=stop)  # fmt: skip
                    continue
                event = ProviderEvent(event_id=f"e{day}-{n}", type="session.stopped",
                                      occurred_at=stop, tenant=slug, session=facts)  # fmt: skip
                digest = hashlib.sha256(f"{slug}{day}{n}".encode()).digest()
                intake.apply_provider_event(conn, tenant_id, "paymobile", event, digest)
        agent = Actor("user", f"agent@{slug}.fr", 1, tenant_id, source="tests")
        for plate in PLATES[:4]:
            enforcement.check_plate(conn, agent, plate, None, today)
        body = ActionCreate(kind="fps", plate=PLATES[3], amount=Decimal("35"))
        enforcement.record_action(conn, agent, tenant_id, body, None)  # type: ignore[arg-type]


def _statistics(url: str, tenant_id: int, today: datetime) -> dict[str, Any]:
    """What the town reads: daily reconciliations (CSV), revenue, sessions per zone and day,
    distinct vehicles per day, repeat visitors."""
    with as_tenant(url, tenant_id) as conn:
        _, tz = reports.tenant_info(conn, tenant_id)
        first = today.date() - timedelta(days=DAYS + 1)
        days = [first + timedelta(days=n) for n in range(DAYS + 3)]
        csvs = [reports.to_csv(reports.reconciliation(conn, day, tz)) for day in days]
        figures = conn.execute(
            "SELECT sum(amount), count(*), count(DISTINCT plate_key) FROM parking_sessions"
        ).fetchone()
        per_zone_day = conn.execute(
            "SELECT zone_id, date_trunc('day', started_at), count(*),"
            " count(DISTINCT plate_key) FROM parking_sessions GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        repeats = conn.execute(
            "SELECT count(*) FROM (SELECT plate_key FROM parking_sessions"
            " GROUP BY plate_key HAVING count(*) > 1) AS r"
        ).fetchone()
    return {"csv": csvs, "figures": figures, "per_zone_day": per_zone_day, "repeats": repeats}


def _in_clear(conn: psycopg.Connection, keys: tuple[str, ...]) -> dict[str, int]:
    """Rows of any text or JSON column, in any table, where one of the plates is in clear
    (compared on letters and digits, whatever the separators)."""
    columns = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'ARRAY')"
        " AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public')"
    ).fetchall()
    pattern = "(" + "|".join(keys) + ")"
    found = {}
    for table, column in columns:
        query = sql.SQL(
            "SELECT count(*) FROM {} WHERE regexp_replace(upper({}::text), '[^A-Z0-9]', '', 'g')"
            " ~ %s"
        ).format(sql.Identifier(table), sql.Identifier(column))
        row = conn.execute(query, (pattern,)).fetchone()
        if row and row[0]:
            found[f"{table}.{column}"] = row[0]
    return found


@pytest.fixture
def towns(conn: psycopg.Connection, settings: Settings) -> dict[str, int]:
    annecy = parking_town(conn, settings, bays=2, zone={"hours": ALWAYS})
    # no bays: tests.kit.parking would put a second town's bays in the first town's zone
    chambery = parking_town(conn, settings, slug="chambery", bays=0, zone={"hours": ALWAYS})
    return {"annecy": annecy.tenant_id, "chambery": chambery.tenant_id}


def test_plates_past_retention_are_pseudonymised_and_statistics_unchanged(
    conn: psycopg.Connection, settings: Settings, towns: dict[str, int]
) -> None:
    today = datetime.now(UTC).replace(microsecond=0)
    for slug, tenant_id in towns.items():
        _plant(settings.database_url, tenant_id, slug, today)
    before = {t: _statistics(settings.database_url, t, today) for t in towns.values()}
    annecy = towns["annecy"]
    assert before[annecy]["figures"][2] == len(KEYS)

    # 30 days on: sessions older than 90 days are pseudonymised, the recent ones are not
    changed = retention.apply(settings, today + timedelta(days=30))
    assert changed["annecy"]["parking_sessions.pseudonymised"] > 0
    cutoff = today + timedelta(days=30) - timedelta(days=settings.plate_retention_days)
    old = conn.execute(
        "SELECT count(*) FILTER (WHERE plate_key NOT LIKE 'pseudo:%%'),"
        " count(*) FILTER (WHERE plate_key LIKE 'pseudo:%%')"
        " FROM parking_sessions WHERE coalesce(stopped_at, ends_at) < %s",
        (cutoff,),
    ).fetchone()
    assert old is not None and old[0] == 0 and old[1] > 0
    recent = conn.execute(
        "SELECT count(*) FROM parking_sessions WHERE coalesce(stopped_at, ends_at) >= %s"
        " AND plate_key LIKE 'pseudo:%%'",
        (cutoff,),
    ).fetchone()
    assert recent == (0,)
    assert _in_clear(conn, KEYS)  # today's checks and recent sessions still name plates
    # per day nothing changes; over the whole period a car seen on both sides of the
    # boundary counts twice until its recent sessions are pseudonymised too
    midway = _statistics(settings.database_url, annecy, today)
    assert midway["csv"] == before[annecy]["csv"]
    assert midway["per_zone_day"] == before[annecy]["per_zone_day"]
    assert midway["figures"][:2] == before[annecy]["figures"][:2]

    # 100 days on: every planted plate is past its retention, in every table
    changed = retention.apply(settings, today + timedelta(days=100))
    assert changed["annecy"]["audit_log.pseudonymised"] == 5  # four checks and the FPS
    assert changed["annecy"]["enforcement_actions.pseudonymised"] == 1
    assert _in_clear(conn, KEYS) == {}
    assert [_statistics(settings.database_url, t, today) for t in towns.values()] == list(
        before.values()
    )
    # the same car typed three ways (days 119, 120, 114) is one pseudonym, another elsewhere
    by_town = conn.execute(
        "SELECT tenant_id, count(DISTINCT plate_key) FROM parking_sessions"
        " WHERE external_id IN ('s119-0', 's120-0', 's114-0') GROUP BY tenant_id"
    ).fetchall()
    assert dict(by_town) == {annecy: 1, towns["chambery"]: 1}
    pseudonyms = conn.execute(
        "SELECT DISTINCT plate_key FROM parking_sessions WHERE external_id = 's120-0'"
    ).fetchall()
    assert len(pseudonyms) == 2

    # a second run finds nothing to do and writes nothing
    audit_rows = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    assert retention.apply(settings, today + timedelta(days=100)) == {}
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == audit_rows


def test_records_past_their_retention_are_deleted(
    conn: psycopg.Connection, settings: Settings, towns: dict[str, int]
) -> None:
    today = datetime.now(UTC).replace(microsecond=0)
    _plant(settings.database_url, towns["annecy"], "annecy", today)
    short = settings.model_copy(update={"sessions_retention_days": 100,
                                        "audit_retention_days": 30})  # fmt: skip
    changed = retention.apply(short, today + timedelta(days=40))["annecy"]
    assert changed["parking_sessions.expired"] > 0
    assert changed["audit_log.expired"] > 0  # the checks, the FPS, the zone's creation...
    oldest = conn.execute("SELECT min(coalesce(stopped_at, ends_at)) FROM parking_sessions")
    row = oldest.fetchone()
    assert row is not None and row[0] >= today + timedelta(days=40) - timedelta(days=100)
    orphans = conn.execute(
        "SELECT count(*) FROM parking_provider_events WHERE session_id IS NULL"
    ).fetchone()
    assert orphans == (0,)
    kept = conn.execute(
        "SELECT action FROM audit_log WHERE tenant_id = %s", (towns["annecy"],)
    ).fetchall()
    assert kept == [("privacy.retention",)]
