"""A town's monthly report: a PDF of the month past (fleet, air, parking, incidents) e-mailed
to its facility managers and administrators once the month is over.

Public IoT contracts ask for a monthly dashboard that can be filed. `run_job` runs every
few minutes; once a town's local clock has passed `report_hour` in a new month, the
previous month's report goes to the town's active facility managers and tenant
administrators, once: the delivery row is claimed in the sending transaction (as the
parking reconciliation does), so a failed send is retried at the next run and a second
process finds the row.

Figures come from pre-aggregated data where they exist: air quality from the hourly rollups
(`core.rollups`, one row per room and hour), parking from the daily reconciliations, the
incidents from their monthly report (`alerts.incident_report`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from alerts.incident_report import Month, monthly
from core import rollups
from core.mail import Smtp, send_town_reports
from core.pdf import Document
from core.settings import Settings
from parking import reports as parking_reports

from . import repository

#: Who receives the report: the town's users holding one of these roles.
RECIPIENT_ROLES = ("facility_manager", "tenant_admin")
_CO2_AIRING, _CO2_CONFINED = 1000.0, 1700.0

_RECIPIENTS = """
SELECT DISTINCT u.email FROM users u JOIN user_roles r ON r.user_id = u.id
WHERE u.tenant_id = %s AND u.active AND r.role = ANY(%s) ORDER BY u.email
"""
_CO2_ROOMS = """
SELECT id, coalesce(site, '-') FROM devices
WHERE id IN (SELECT device_id FROM readings WHERE quantity = 'co2' AND time >= %s AND time < %s)
"""
_CLAIM = """
INSERT INTO dashboard_report_deliveries (tenant_id, month, recipients, message_id)
VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING month
"""


@dataclass(frozen=True)
class SiteAir:
    """A building's CO2 over the month, from its rooms' hourly means."""

    site: str
    rooms: int
    hours: int  # room-hours with data
    mean_co2: float
    hours_above_airing: int  # room-hours whose mean is above 1,000 ppm
    hours_above_confined: int  # ... above 1,700 ppm


@dataclass(frozen=True)
class MonthlyReport:
    """What the PDF shows."""

    town: str
    month: Month
    devices: dict[str, int]
    air: list[SiteAir]
    parking_sessions: int
    parking_amount: Decimal
    incidents: dict[str, Any]


def _air(conn: psycopg.Connection, start: datetime, end: datetime) -> list[SiteAir]:
    sites: dict[int, str] = dict(conn.execute(_CO2_ROOMS, (start, end)).fetchall())
    if not sites:
        return []
    hourly: dict[str, list[float]] = defaultdict(list)
    rooms: dict[str, set[int]] = defaultdict(set)
    for row in rollups.hourly(conn, device_ids=list(sites), quantity="co2", start=start, end=end):
        hourly[sites[row.device_id]].append(row.avg_value)
        rooms[sites[row.device_id]].add(row.device_id)
    return [
        SiteAir(site, len(rooms[site]), len(means), sum(means) / len(means),
                sum(m > _CO2_AIRING for m in means), sum(m > _CO2_CONFINED for m in means))
        for site, means in sorted(hourly.items())
    ]  # fmt: skip


def build(
    conn: psycopg.Connection, tenant_id: int, month: Month, *, at: datetime | None = None
) -> MonthlyReport:
    """The town's report of `month` (the connection confined to the town)."""
    town, zone = parking_reports.tenant_info(conn, tenant_id)
    start, end = month.bounds(zone)
    sessions, amount = 0, Decimal(0)
    day = start.astimezone(zone).date()
    while day < end.astimezone(zone).date():
        total = parking_reports.reconciliation(conn, day, zone).total
        sessions, amount = sessions + total.sessions, amount + total.total
        day += timedelta(days=1)
    return MonthlyReport(
        town=town, month=month, devices=repository.device_counts(conn),
        air=_air(conn, start, end), parking_sessions=sessions, parking_amount=amount,
        incidents=monthly(conn, tenant_id, month, at=at),
    )  # fmt: skip


def _count(value: Any) -> str:
    return f"{value:,}".replace(",", "\u202f")


def to_pdf(report: MonthlyReport) -> bytes:
    """The report as an A4 PDF, in French."""
    pdf = Document(f"Rapport mensuel {report.month} - {report.town}")
    pdf.heading("Parc de capteurs")
    devices = report.devices
    pdf.paragraph(f"Actifs : {_count(devices['active'])} ; muets : {_count(devices['silent'])} ;"
                  f" en attente : {_count(devices['pending'])}")  # fmt: skip
    pdf.heading("Qualité de l'air (CO2, moyennes horaires)")
    if report.air:
        rows = [[a.site, str(a.rooms), _count(a.hours), f"{a.mean_co2:.0f}",
                 _count(a.hours_above_airing), _count(a.hours_above_confined)]
                for a in report.air]  # fmt: skip
        header = ["Bâtiment", "Salles", "Heures", "CO2 moyen (ppm)", "> 1 000 ppm", "> 1 700 ppm"]
        pdf.grid(header, rows, (60, 18, 22, 32, 28, 28), align="LRRRRR")
    else:
        pdf.paragraph("Aucune mesure de CO2 ce mois-ci.")
    pdf.heading("Stationnement")
    amount = f"{report.parking_amount:,.2f}".replace(",", "\u202f").replace(".", ",")
    pdf.paragraph(f"Sessions payées : {_count(report.parking_sessions)} ; montant : {amount} €")
    pdf.heading("Incidents")
    incidents = report.incidents
    pdf.paragraph(_incident_summary(incidents))
    return pdf.output_bytes()


def _incident_summary(incidents: dict[str, Any]) -> str:
    """One line from `alerts.incident_report.monthly`'s figures."""
    parts = [f"Ouverts : {_count(incidents['opened']['total'])}"]
    for milestone in ("gti", "gtr"):
        rate = incidents["compliance"][milestone]["rate"]
        shown = "-" if rate is None else f"{rate * 100:.0f} %"
        parts.append(f"respect {milestone.upper()} : {shown}")
    parts.append(f"en cours à la fin du mois : {_count(incidents['backlog']['total'])}")
    return " ; ".join(parts)


def message(report: MonthlyReport, *, sender: str, to: list[str]) -> EmailMessage:
    """The e-mail carrying the PDF."""
    mail = EmailMessage()
    mail["Subject"] = f"[civicsense] Rapport mensuel {report.month} - {report.town}"
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    mail.set_content(
        f"Bonjour,\n\nVoici le rapport mensuel de {report.town} pour {report.month} (PDF joint):"
        " parc de capteurs, qualité de l'air, stationnement, incidents.\n\n"
        "Message automatique de civicsense, merci de ne pas y répondre.\n"
    )
    mail.add_attachment(to_pdf(report), maintype="application", subtype="pdf",
                        filename=f"rapport-{report.month}.pdf")  # fmt: skip
    return mail


def send_monthly(
    conn: psycopg.Connection, smtp: Smtp, *, tenant_id: int, month: Month, sender: str,
    at: datetime | None = None,
) -> bool:  # fmt: skip
    """Send `month`'s report to the town's managers unless already sent; whether it was sent
    now. Runs in the caller's transaction, with the town set."""
    to = [row[0] for row in conn.execute(_RECIPIENTS, (tenant_id, list(RECIPIENT_ROLES)))]
    if not to:
        return False
    mail = message(build(conn, tenant_id, month, at=at), sender=sender, to=to)
    claimed = conn.execute(_CLAIM, (tenant_id, str(month), to, str(mail["Message-ID"])))
    if claimed.fetchone() is None:
        return False
    smtp.send(mail)
    return True


def run_job(settings: Settings, now: datetime | None = None) -> int:
    """Scheduled: last month's report to every town past its report hour; how many sent."""

    def send(conn: psycopg.Connection, smtp: Smtp, tenant_id: int, zone: ZoneInfo,
             at: datetime) -> bool:  # fmt: skip
        month = Month.containing(at, zone).previous()
        return send_monthly(conn, smtp, tenant_id=tenant_id, month=month,
                            sender=settings.smtp_from, at=at)  # fmt: skip

    return send_town_reports(settings, "monthly reports", send, now or datetime.now(UTC))
