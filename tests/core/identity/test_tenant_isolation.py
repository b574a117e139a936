"""Tenant isolation in the database: the application role, set to tenant A, cannot read
or change tenant B's rows through any table, even with hand-written SQL."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from PIL import Image
from psycopg import sql
from psycopg.types.json import Jsonb

from alerts import alerting, attachments, incidents, notify, rule_service
from alerts.rulebook import RuleBook
from core import audit, crypto, images, rollups, tenants
from core.db import APP_ROLE
from core.identity import repository
from core.settings import Settings
from devices import downlinks, photos
from devices import service as devices
from devices.models import DeviceCreate
from ingest.events import StoredReading, StoredUplink
from parking import action_photos, intake, places, report_mail
from parking.models import BayCreate, ZoneCreate
from parking.session_models import ProviderEvent, SessionBatch
from tests.kit.catalog import SIRETS, order_of
from tests.kit.identity import SYSTEM, add_api_key, add_user

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _seed_tenant(conn: psycopg.Connection, settings: Settings, slug: str, n: int) -> int:
    """One row of the tenant in every tenant table, through the code that writes them."""
    tenant_id = tenants.create(conn, tenants.TenantCreate(slug=slug, name=f"Ville {slug}"))
    dev_eui = f"a84041000000000{n}"
    _, device = devices.register(
        conn, settings, tenant_id=tenant_id,
        device=DeviceCreate(dev_eui=dev_eui, model="milesight-em300-sld", name="chaufferie",
                            app_key="00112233445566778899aabbccddeeff"),
    )  # fmt: skip
    user = add_user(
        conn, tenant_id=tenant_id, email=f"agent@{slug}.fr", roles=["technician"],
        permissions=["parking:enforce"],
    )  # fmt: skip
    add_api_key(conn, tenant_id=tenant_id, permissions=["readings:read"])
    repository.insert_provider(
        conn, tenant_id=tenant_id, provider="paybyphone",
        secret_encrypted=crypto.encrypt(settings, "s3cr3t"), created_by=user["id"],
    )  # fmt: skip
    audit.record(conn, SYSTEM, "test.seed", tenant_id=tenant_id)
    downlinks.insert(
        conn, tenant_id=tenant_id, device=device, created_by="tests",
        request=downlinks.DownlinkCreate(f_port=10, data_hex="01"),
    )  # fmt: skip
    photos.store(conn, tenant_id=tenant_id, device=device, uploaded_by="tests", image=_photo())
    conn.execute(
        "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
        " VALUES (%s, %s, %s, 'leak', 0)",
        (NOW, tenant_id, device["id"]),
    )
    conn.execute(
        "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id, f_port, payload)"
        " VALUES (%s, %s, %s, %s, %s, 85, '\\x0175'::bytea)",
        (NOW, tenant_id, device["id"], dev_eui, uuid.uuid4()),
    )
    conn.execute(
        "INSERT INTO device_events (time, tenant_id, device_id, dev_eui, kind, event_key, body)"
        " VALUES (%s, %s, %s, %s, 'join', %s, '{}')",
        (NOW, tenant_id, device["id"], dev_eui, str(uuid.uuid4())),
    )
    conn.execute(
        "INSERT INTO ingest_rejects (tenant_id, source, reason, detail, fingerprint, raw)"
        " VALUES (%s, 'mqtt', 'undecodable', 'short frame', %s, '\\x00'::bytea)",
        (tenant_id, uuid.uuid4().bytes),
    )
    _seed_parking(conn, tenant_id, slug, dev_eui)
    _seed_alerts(conn, tenant_id, device["id"], dev_eui)
    _seed_notifications(conn, settings, tenant_id, slug, user)
    _seed_incident_attachment(conn, tenant_id)
    order_of(conn, tenant_id, siret=SIRETS[slug])
    conn.execute("INSERT INTO dashboard_report_deliveries (tenant_id, month, recipients,"
                 " message_id) VALUES (%s, '2026-10', %s, 'm1')",
                 (tenant_id, [f"dgs@{slug}.fr"]))  # fmt: skip
    return tenant_id


def _seed_alerts(conn: psycopg.Connection, tenant_id: int, device_id: int, dev_eui: str) -> None:
    """The default rules, a leak's alert with its incident, comment and notifications, a
    gateway heard, the town's service-level options."""
    rule_service.install_templates(conn, SYSTEM, tenant_id)
    conn.execute("UPDATE readings SET value = 1 WHERE tenant_id = %s AND quantity = 'leak'",
                 (tenant_id,))  # fmt: skip
    leak = StoredReading(NOW, tenant_id, device_id, dev_eui, "milesight-em300-sld", "leak", 1)
    uplink = StoredUplink(NOW, tenant_id, device_id, dev_eui, 1, "gw-1", -90, 7.5, ("gw-1",))
    alerting.note_heard(conn, [uplink])
    alerting.evaluate_readings(conn, RuleBook(), [leak])
    conn.execute("INSERT INTO alert_settings (tenant_id, sla_policy) VALUES (%s, '{}')",
                 (tenant_id,))  # fmt: skip


def _seed_notifications(
    conn: psycopg.Connection, settings: Settings, tenant_id: int, slug: str, user: dict[str, Any]
) -> None:
    """A webhook route, a user's digest preference, the incident's notifications and a
    digest sent."""
    notify.create_route(conn, tenant_id=tenant_id, created_by=user["id"], route={
        "name": "GMAO", "channel": "webhook", "target": f"https://gmao.{slug}.fr/hook",
        "categories": [], "events": [], "min_priority": "P2",
    }, secret_encrypted=crypto.encrypt(settings, "s3cr3t-s3cr3t-s3cr3t"))  # fmt: skip
    notify.put_preference(conn, tenant_id=tenant_id, user_id=user["id"], preference={
        "mode": "digest", "categories": [], "min_priority": "P2", "digest_hour": 7})  # fmt: skip
    incident = conn.execute("SELECT id FROM incidents WHERE tenant_id = %s",
                            (tenant_id,)).fetchone()  # fmt: skip
    assert incident is not None
    notify.incident_event(conn, incident[0], "resolved")
    conn.execute("INSERT INTO notification_digests (tenant_id, user_id, day, target, items,"
                 " message_id) VALUES (%s, %s, %s, %s, 1, %s)",
                 (tenant_id, user["id"], NOW.date(), user["email"], f"<{slug}@tests>"))  # fmt: skip


def _seed_incident_attachment(conn: psycopg.Connection, tenant_id: int) -> None:
    """A photo attached to the town's incident (the leak's, from _seed_alerts)."""
    row = conn.execute("SELECT id FROM incidents WHERE tenant_id = %s", (tenant_id,)).fetchone()
    assert row is not None
    image = _photo()
    photo = attachments.StoredFile(image.data, image.content_type, image.width, image.height, {})
    incidents.attach(conn, SYSTEM, tenant_id, row[0], filename="fuite.jpg", file=photo)


def _photo() -> images.CleanImage:
    png = io.BytesIO()
    Image.new("RGB", (16, 16), "grey").save(png, "PNG")
    return images.clean(png.getvalue(), "image/png")


def _seed_parking(conn: psycopg.Connection, tenant_id: int, slug: str, sensor: str) -> None:
    """A zone, a bay with its sensor and a stay, sessions from an operator and a pay
    station, an enforcement action with its photo."""
    places.create_zone(conn, SYSTEM, tenant_id, ZoneCreate(code="Z1", name="Centre"))
    bay = places.create_bay(conn, SYSTEM, tenant_id, BayCreate(
        code="B1", zone="Z1", lat=45.9, lon=6.1, sensor=sensor))  # fmt: skip
    conn.execute("INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at) VALUES (%s, %s, %s)",
                 (bay["id"], tenant_id, NOW))  # fmt: skip
    facts = {"id": "s1", "plate": "AB-123-CD", "zone": "Z1", "started_at": NOW.isoformat()}
    event = ProviderEvent.model_validate({"event_id": "e1", "type": "session.started",
        "occurred_at": NOW.isoformat(), "tenant": slug, "session": facts})  # fmt: skip
    intake.apply_provider_event(conn, tenant_id, "paybyphone", event, uuid.uuid4().bytes)
    batch = SessionBatch.model_validate({"station": "horodateur-1", "batch_id": "b1",
                                         "sessions": [facts]})  # fmt: skip
    intake.apply_batch(conn, SYSTEM, tenant_id, batch)
    action = conn.execute("INSERT INTO enforcement_actions (tenant_id, bay_id, kind, agent)"
                          " VALUES (%s, %s, 'warning', 'agent') RETURNING id",
                          (tenant_id, bay["id"])).fetchone()  # fmt: skip
    assert action is not None
    action_photos.add(conn, tenant_id=tenant_id, action_id=action[0], image=_photo(),
                      uploaded_by="agent")  # fmt: skip
    recipient = report_mail.Recipient(email=f"regie@{slug}.fr", role="regie")
    report_mail.replace_recipients(conn, SYSTEM, tenant_id, [recipient])
    conn.execute("INSERT INTO parking_report_deliveries (tenant_id, report, day, recipients,"
                 " message_id) VALUES (%s, 'reconciliation', %s, %s, 'm1')",
                 (tenant_id, NOW.date(), [recipient.email]))  # fmt: skip


@pytest.fixture
def two_towns(conn: psycopg.Connection, settings: Settings) -> tuple[int, int]:
    """Tenants A and B, each with rows everywhere."""
    towns = _seed_tenant(conn, settings, "annecy", 1), _seed_tenant(conn, settings, "lyon", 2)
    # readings_hourly: the hour of both towns' seeded readings, rolled up
    rollups.refresh(conn, start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
    return towns


def _tenant_tables(conn: psycopg.Connection) -> dict[str, str]:
    """Every table (partitioned parents included, partitions not) and its tenant column."""
    rows = conn.execute(
        """
        SELECT c.relname, a.attname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        """
    ).fetchall()
    return {"tenants": "id", **{table: column for table, column in rows}}


@pytest.fixture
def as_app(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection as the application role, in a transaction the test controls."""
    with psycopg.connect(database_url) as connection:
        connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        yield connection


def _set_tenant(conn: psycopg.Connection, tenant_id: int) -> None:
    conn.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(tenant_id),))


def _refused(conn: psycopg.Connection, query: sql.Composable, params: object = None) -> bool:
    """True when PostgreSQL refuses the statement for lack of privilege or by policy."""
    try:
        with conn.transaction():
            conn.execute(query, params)  # type: ignore[arg-type]
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def test_every_tenant_table_is_seeded_for_both_towns(
    conn: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    """Guard: a new tenant table must be seeded here, or the isolation test proves nothing."""
    tables = _tenant_tables(conn)
    assert {"devices", "readings", "uplinks", "users", "api_keys", "audit_log"} <= set(tables)
    for table, column in tables.items():
        query = sql.SQL("SELECT count(DISTINCT {}) FROM {} WHERE {} = ANY(%s)").format(
            sql.Identifier(column), sql.Identifier(table), sql.Identifier(column)
        )
        row = conn.execute(query, (list(two_towns),)).fetchone()
        assert row == (2,), f"{table} has no row of one of the towns"


def test_app_role_set_to_a_sees_only_a_in_every_table(
    conn: psycopg.Connection, as_app: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    town_a, town_b = two_towns
    _set_tenant(as_app, town_a)
    for table, column in _tenant_tables(conn).items():
        ident, col = sql.Identifier(table), sql.Identifier(column)
        others = as_app.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} IS DISTINCT FROM %s").format(ident, col),
            (town_a,),
        ).fetchone()
        assert others == (0,), f"{table}: another tenant's rows are visible"
        own = as_app.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
        assert own is not None and own[0] >= 1, f"{table}: own rows not visible"
        by_id = as_app.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(ident, col), (town_b,)
        ).fetchone()
        assert by_id == (0,), f"{table}: asking for B by id returns rows"


def test_app_role_set_to_a_cannot_change_b_in_any_table(
    conn: psycopg.Connection, as_app: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    town_a, town_b = two_towns
    _set_tenant(as_app, town_a)
    for table, column in _tenant_tables(conn).items():
        ident, col = sql.Identifier(table), sql.Identifier(column)
        touched = sql.Identifier("name" if table == "tenants" else column)  # id is generated
        for statement in (
            sql.SQL("UPDATE {} SET {} = {} WHERE {} = %s").format(ident, touched, touched, col),
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(ident, col),
        ):
            try:
                with as_app.transaction():
                    changed = as_app.execute(statement, (town_b,)).rowcount
            except psycopg.errors.InsufficientPrivilege:
                changed = 0
            assert changed == 0, f"{table}: changed {changed} row(s) of B"
        # a copy of one of B's rows, without its generated id, must not go in
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT to_jsonb(t) - 'id' FROM {} t WHERE {} = %s LIMIT 1").format(
                    ident, col
                ),
                (town_b,),
            )
            row = cur.fetchone()
        assert row is not None
        columns = [sql.Identifier(c) for c in row[0]]
        insert = sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM jsonb_populate_record(NULL::{}, %s)"
        ).format(ident, sql.SQL(", ").join(columns), sql.SQL(", ").join(columns), ident)
        assert _refused(as_app, insert, (Jsonb(row[0]),)), f"{table}: a row of B went in"
    counts = {
        table: conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        for table in _tenant_tables(conn)
    }
    assert all(count is not None and count[0] >= 2 for count in counts.values())


def test_partitions_cannot_be_read_around_the_policy(
    conn: psycopg.Connection, as_app: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    partitions = [
        name
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE p.relname IN ('readings', 'uplinks', 'device_events')"
        ).fetchall()
    ]
    assert partitions, "the native time tables have partitions"
    _set_tenant(as_app, two_towns[0])
    for name in partitions:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        assert _refused(as_app, query), f"partition {name} is readable directly"


def test_without_a_tenant_the_app_role_sees_nothing(
    conn: psycopg.Connection, as_app: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    for table in _tenant_tables(conn):
        count = as_app.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        assert count == (0,), f"{table} leaks rows when no tenant is set"


def test_app_role_cannot_touch_sessions(
    as_app: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    _set_tenant(as_app, two_towns[0])
    assert _refused(as_app, sql.SQL("SELECT count(*) FROM auth_sessions"))


def test_audit_trail_is_append_only(
    conn: psycopg.Connection, as_app: psycopg.Connection, two_towns: tuple[int, int]
) -> None:
    town_a, _ = two_towns
    _set_tenant(as_app, town_a)
    assert _refused(as_app, sql.SQL("DELETE FROM audit_log"))
    assert _refused(as_app, sql.SQL("UPDATE audit_log SET action = 'nothing happened'"))
    assert _refused(as_app, sql.SQL("TRUNCATE audit_log"))
    forged = sql.SQL(
        "INSERT INTO audit_log (tenant_id, actor_kind, actor, action, outcome)"
        " VALUES (%s, 'user', 'someone', 'user.create', 'success')"
    )
    assert _refused(as_app, forged, (two_towns[1],)), "an entry for another town"
    assert _refused(as_app, forged, (None,)), "an operator-level entry"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute("DELETE FROM audit_log")  # not even the owner
    before = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    assert before is not None and before[0] >= 2
