"""The monthly report: built from the month's rollups, reconciliations and incidents, e-mailed
once to the town's facility managers and administrators after the month, as a PDF whose text
shows the figures."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr
from pypdf import PdfReader

from alerts import incidents
from core import rollups, tenants
from core.settings import Settings
from dashboard import monthly_report
from devices import service as devices
from devices.models import DeviceCreate
from tests.kit.identity import SYSTEM, add_user
from tests.kit.smtp import SmtpServer, smtp_server

OCTOBER = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday morning, Paris 10:00
AFTER = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)  # Paris 10:30 on the 1st of November


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> dict[str, object]:
    """A school with one classroom sensor in October, a leak incident, and its people."""
    tenant = tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    _, room = devices.register(conn, settings, tenant_id=tenant, device=DeviceCreate(
        dev_eui="a81758fffe000001", model="elsys-ers-co2", name="CM1",
        site="École Jules Ferry"))  # fmt: skip
    co2 = [800.0, 1200.0, 1800.0, 900.0]  # one reading per hour
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
            " VALUES (%s, %s, %s, 'co2', %s)",
            [(OCTOBER + timedelta(hours=h), tenant, room["id"], v) for h, v in enumerate(co2)],
        )
    rollups.refresh(conn, start=OCTOBER - timedelta(hours=1), end=OCTOBER + timedelta(hours=5))
    incidents.open_incident(conn, SYSTEM, tenant, title="Fuite chaufferie",
                            incident_class="bloquant", source="user",
                            opened_at=OCTOBER)  # fmt: skip
    for email, role in (
        ("services-techniques@annecy.fr", "facility_manager"),
        ("dgs@annecy.fr", "tenant_admin"),
        ("elu@annecy.fr", "viewer"),
    ):
        add_user(conn, tenant_id=tenant, email=email, roles=[role])  # fmt: skip
    conn.commit()
    return {"tenant": tenant, "co2": co2}


def test_the_report_reaches_the_managers_once_with_the_months_figures(
    settings: Settings, mail: SmtpServer, town: dict[str, object], conn: psycopg.Connection
) -> None:
    configured = settings.model_copy(update={"smtp_url": SecretStr(mail.url), "report_hour": 7,
                                             "smtp_from": "civicsense@annecy.fr"})  # fmt: skip
    assert monthly_report.run_job(configured, now=AFTER - timedelta(hours=4)) == 0  # 06:30 Paris
    assert monthly_report.run_job(configured, now=AFTER) == 1
    assert monthly_report.run_job(configured, now=AFTER + timedelta(hours=1)) == 0  # sent once
    (received,) = mail.messages
    assert sorted(received.rcpt_tos) == ["dgs@annecy.fr", "services-techniques@annecy.fr"]
    assert received.message["Subject"] == "[civicsense] Rapport mensuel 2026-10 - Annecy"
    (attachment,) = list(received.message.iter_attachments())
    assert attachment.get_filename() == "rapport-2026-10.pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(
        attachment.get_content())).pages)  # fmt: skip
    co2 = town["co2"]
    assert isinstance(co2, list)
    assert "École Jules Ferry" in text
    assert f"{sum(co2) / len(co2):.0f}" in text  # the rollups' mean of the month
    assert "Ouverts : 1" in text
    assert "Sessions payées : 0" in text
    sent = conn.execute("SELECT month, recipients FROM dashboard_report_deliveries").fetchall()
    assert sent == [("2026-10", ["dgs@annecy.fr", "services-techniques@annecy.fr"])]
