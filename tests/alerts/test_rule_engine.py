"""The rule engine on a real database: committed readings and uplinks in, alerts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts import health_checks
from alerts.alerting import RuleEngine, evaluate_readings, note_heard
from alerts.rule_service import create_rule
from alerts.rulebook import RuleBook
from alerts.rules import Gateway, Rate, RuleSpec, Scope, Silence, Threshold
from core import tenants
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from ingest.events import ReadingsStored, StoredReading, StoredUplink
from tests.kit.identity import SYSTEM

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CO2_EUI, OTHER_EUI = "a81758fffe000001", "a81758fffe000002"


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> dict[str, int]:
    tenant = tenants.get_or_create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    ids = {"tenant": tenant}
    for key, eui, site in (("co2", CO2_EUI, "École Jules Ferry"), ("other", OTHER_EUI, "Mairie")):
        _, row = devices.register(conn, settings, tenant_id=tenant, device=DeviceCreate(
            dev_eui=eui, model="elsys-ers-co2", name=f"Salle {key}", site=site))  # fmt: skip
        ids[key] = row["id"]
    conn.commit()
    return ids


def reading(town: dict[str, int], minutes: float, value: float, quantity: str = "co2",
            device: str = "co2") -> StoredReading:  # fmt: skip
    eui = CO2_EUI if device == "co2" else OTHER_EUI
    return StoredReading(T0 + timedelta(minutes=minutes), town["tenant"], town[device], eui,
                         "elsys-ers-co2", quantity, value)  # fmt: skip


def store(conn: psycopg.Connection, readings: list[StoredReading]) -> None:
    """Commit the readings as ingest would, before its subscribers run."""
    with conn.cursor() as cur:
        rows = [(r.time, r.tenant_id, r.device_id, r.quantity, r.value) for r in readings]
        cur.executemany("INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
                        " VALUES (%s, %s, %s, %s, %s)", rows)  # fmt: skip
    conn.commit()


def add_rule(conn: psycopg.Connection, tenant: int, spec: RuleSpec) -> int:
    rule = create_rule(conn, SYSTEM, tenant, spec)
    conn.commit()
    return rule["id"]


def evaluate(conn: psycopg.Connection, book: RuleBook, readings: list[StoredReading]) -> None:
    store(conn, readings)
    with conn.transaction():
        evaluate_readings(conn, book, readings)


def alerts(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT rule_id, device_id, gateway_id, state, started_at, opened_at,"
                        " repeats, value FROM alerts ORDER BY id").fetchall()  # fmt: skip


CONFINED = Threshold(quantity="co2", value=1700, for_minutes=10, clear_value=1500)
CO2 = RuleSpec(name="CO2", category="air", condition=CONFINED)


def test_a_threshold_with_duration_opens_repeats_and_clears_across_batches(
    conn: psycopg.Connection, town: dict[str, int]
) -> None:
    rule = add_rule(conn, town["tenant"], CO2)
    book = RuleBook()
    evaluate(conn, book, [reading(town, 0, 1800), reading(town, 5, 1850)])
    assert [a[3] for a in alerts(conn)] == ["pending"]
    evaluate(conn, book, [reading(town, 10, 1900), reading(town, 15, 1800)])
    ((rule_id, device, _, state, started, opened, repeats, value),) = alerts(conn)
    assert (rule_id, device, state) == (rule, town["co2"], "open")
    assert (started, opened, repeats, value) == (T0, T0 + timedelta(minutes=10), 1, 1800)
    evaluate(conn, book, [reading(town, 20, 1600)])  # in the hysteresis band: still open
    assert alerts(conn)[0][3] == "open"
    evaluate(conn, book, [reading(town, 25, 1400)])
    assert [a[3] for a in alerts(conn)] == ["cleared"]
    evaluate(conn, book, [reading(town, 30, 1900), reading(town, 45, 1900)])
    assert [a[3] for a in alerts(conn)] == ["cleared", "open"]


def test_scope_and_other_quantities_are_respected(
    conn: psycopg.Connection, town: dict[str, int]
) -> None:
    at_once = Threshold(quantity="co2", value=1000)
    scoped = CO2.model_copy(update={"scope": Scope(site="École Jules Ferry"), "condition": at_once})
    add_rule(conn, town["tenant"], scoped)
    evaluate(conn, RuleBook(), [reading(town, 0, 1200, device="other"),
                                reading(town, 0, 25, quantity="temperature"),
                                reading(town, 1, 1200)])  # fmt: skip
    assert [(a[1], a[3]) for a in alerts(conn)] == [(town["co2"], "open")]


def test_edited_rules_apply_to_the_next_batch(
    conn: psycopg.Connection, town: dict[str, int]
) -> None:
    book = RuleBook()
    evaluate(conn, book, [reading(town, 0, 1200)])
    rule = add_rule(conn, town["tenant"], CO2.model_copy(
        update={"condition": Threshold(quantity="co2", value=1000)}))  # fmt: skip
    evaluate(conn, book, [reading(town, 1, 1200)])
    assert [(a[0], a[3]) for a in alerts(conn)] == [(rule, "open")]
    conn.execute("UPDATE alert_rules SET enabled = false, updated_at = clock_timestamp()")
    conn.commit()
    evaluate(conn, book, [reading(town, 2, 500)])
    assert [a[3] for a in alerts(conn)] == ["open"]  # disabled: nothing evaluated


def test_a_rate_rule_compares_with_the_start_of_its_window(
    conn: psycopg.Connection, town: dict[str, int]
) -> None:
    add_rule(conn, town["tenant"], RuleSpec(name="Chauffe", category="air", condition=Rate(
        quantity="temperature", delta=5, window_minutes=30, direction="rise")))  # fmt: skip
    book = RuleBook()
    evaluate(
        conn, book, [reading(town, 0, 20, "temperature"), reading(town, 10, 22, "temperature")]
    )
    assert alerts(conn) == []
    evaluate(conn, book, [reading(town, 20, 26, "temperature")])
    assert [(a[3], a[7]) for a in alerts(conn)] == [("open", 6)]
    evaluate(conn, book, [reading(town, 45, 26.5, "temperature")])  # window starts at 22 → +4.5
    assert [a[3] for a in alerts(conn)] == ["cleared"]


def test_silence_and_gateway_checks_open_and_hearing_clears(
    conn: psycopg.Connection, town: dict[str, int]
) -> None:
    silence = add_rule(conn, town["tenant"], RuleSpec(name="Muet", category="silence",
                                                      condition=Silence(factor=3)))  # fmt: skip
    gateway = add_rule(conn, town["tenant"], RuleSpec(name="Passerelle", category="gateway",
                                                      condition=Gateway(minutes=30)))  # fmt: skip
    conn.execute("UPDATE devices SET status = 'active', last_seen_at = %s,"
                 " expected_interval_s = 600", (T0,))  # fmt: skip
    uplink = StoredUplink(T0, town["tenant"], town["co2"], CO2_EUI, 1, "gw-1", -90, 7.5, ("gw-1",))
    with conn.transaction():
        note_heard(conn, [uplink])
    with conn.transaction():
        health_checks.check(conn, now=T0 + timedelta(minutes=29))
    assert alerts(conn) == []
    with conn.transaction():
        health_checks.check(conn, now=T0 + timedelta(minutes=31))
        health_checks.check(conn, now=T0 + timedelta(minutes=32))  # no duplicate, no repeat
    opened = {(a[0], a[1], a[2]): a for a in alerts(conn)}
    assert set(opened) == {(silence, town["co2"], None), (silence, town["other"], None),
                           (gateway, None, "gw-1")}  # fmt: skip
    assert opened[silence, town["co2"], None][4] == T0 + timedelta(minutes=30)
    assert all(a[3] == "open" and a[6] == 0 for a in opened.values())
    heard = uplink._replace(time=T0 + timedelta(minutes=40))
    with conn.transaction():
        note_heard(conn, [heard])
    states = {(a[0], a[1], a[2]): a[3] for a in alerts(conn)}
    assert states == {(silence, town["co2"], None): "cleared",
                      (silence, town["other"], None): "open",
                      (gateway, None, "gw-1"): "cleared"}  # fmt: skip


def test_the_engine_thread_evaluates_what_ingest_hands_it(
    conn: psycopg.Connection, town: dict[str, int], database_url: str
) -> None:
    add_rule(conn, town["tenant"], CO2)
    first, second = [reading(town, 0, 1800)], [reading(town, 10, 1900), reading(town, 12, 1850)]
    store(conn, first + second)
    engine = RuleEngine(database_url)
    try:
        engine.on_readings(ReadingsStored(tuple(first)))
        engine.on_readings(ReadingsStored(tuple(second)))
        assert engine.wait_idle(30)
        assert [(a[3], a[6]) for a in alerts(conn)] == [("open", 1)]
        assert engine.tally.observations == 3 and engine.tally.opened == 1
    finally:
        engine.stop()
