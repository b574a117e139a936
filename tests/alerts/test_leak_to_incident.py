"""Acceptance: a leak uplink published to the broker becomes a P0 incident and an e-mail
delivered to a real SMTP server; repeats are counted on the one alert, the alert clears
when the sensor reports dry, and a new leak while the incident is open joins that incident."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr

from alerts.delivery import DeliveryWorker
from alerts.rule_service import install_templates
from core import tenants
from core.embedded import EmbeddedBroker
from core.settings import Settings
from devices import service as devices
from devices.models import DeviceCreate
from ingest.worker import Worker, start_worker
from tests.kit.identity import SYSTEM, add_user
from tests.kit.mqtt import publish_all
from tests.kit.smtp import SmtpServer, smtp_server
from tests.kit.uplinks import uplink
from tests.kit.waiting import wait_until

LEAK_EUI = "24e124136c225107"
MODEL = "milesight-em300-sld"


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def town(
    conn: psycopg.Connection, settings: Settings, broker: EmbeddedBroker, mail: SmtpServer,
    request: pytest.FixtureRequest,
) -> Iterator[Settings]:  # fmt: skip
    """A town with the default rules, a leak sensor in its gymnasium and a facility manager;
    an ingest worker on the broker and the notification delivery worker."""
    tenant = tenants.get_or_create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    devices.register(conn, settings, tenant_id=tenant, device=DeviceCreate(
        dev_eui=LEAK_EUI, model=MODEL, name="Vestiaires", site="Gymnase Jean Moulin"))  # fmt: skip
    install_templates(conn, SYSTEM, tenant)
    add_user(conn, tenant_id=tenant, email="services-techniques@annecy.fr",
             roles=["facility_manager"])  # fmt: skip
    conn.commit()
    running = settings.model_copy(update={
        "mqtt_url": broker.url, "batch_max_age_ms": 50, "smtp_url": SecretStr(mail.url),
        "smtp_from": "alertes@annecy.fr"})  # fmt: skip
    worker: Worker = start_worker(running, client_id=f"leak-{os.getpid()}-{request.node.name}"[:60])
    delivery = DeliveryWorker(running, poll_seconds=1).start()
    try:
        assert worker.source.connected.wait(10)
        yield running
    finally:
        delivery.stop()
        worker.stop()


def publish(settings: Settings, leak: int, at: datetime) -> None:
    inbound = uplink(LEAK_EUI, MODEL, {"leak": leak, "temperature": 18.5}, at)
    publish_all(settings.mqtt_url, [(inbound.topic, inbound.payload)])


def alerts(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT state, repeats, incident_id FROM alerts ORDER BY id").fetchall()


def test_a_leak_becomes_a_p0_incident_and_an_email(
    conn: psycopg.Connection, town: Settings, mail: SmtpServer
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    publish(town, 1, start)
    incident = wait_until(lambda: conn.execute(
        "SELECT id, priority, incident_class, category, source, state, title FROM incidents"
    ).fetchone(), timeout=30)  # fmt: skip
    incident_id, priority, klass, category, source, state, title = incident
    assert (priority, klass, category, source, state) == ("P0", "bloquant", "leak", "alert", "new")
    assert "Vestiaires" in title
    received = wait_until(lambda: mail.messages, timeout=30)
    (message,) = received
    assert message.rcpt_tos == ["services-techniques@annecy.fr"]
    assert "P0" in message.message["Subject"] and "Vestiaires" in message.message["Subject"]
    assert f"/incidents/{incident_id}" in message.message.get_content()

    publish(town, 1, start + timedelta(minutes=1))  # the sensor repeats itself
    wait_until(lambda: alerts(conn) == [("open", 1, incident_id)], timeout=30)

    publish(town, 0, start + timedelta(minutes=2))  # dry again: the alert clears
    wait_until(lambda: alerts(conn) == [("cleared", 1, incident_id)], timeout=30)

    publish(town, 1, start + timedelta(minutes=3))  # leaking again while the incident is open
    wait_until(lambda: len(alerts(conn)) == 2, timeout=30)
    assert alerts(conn)[1] == ("open", 0, incident_id)
    assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (1,)
    assert len(mail.messages) == 1, "one incident, one e-mail"
