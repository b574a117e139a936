"""The daily reconciliation e-mailed to each town's recipients (régie, police, parking).

`run_job` runs every few minutes. For each tenant, once its local clock has passed
`report_hour`, it sends yesterday's reconciliation (CSV and PDF attached) to the
tenant's recipients, once: the delivery row is claimed in the same transaction as the
send, so a failed send leaves no row (retried at the next run), a second run or a
second worker finds the row (the primary key makes the other wait, then skip). A crash
between the SMTP answer and the commit can send the same report twice, never zero times.

Without `smtp_url` the job does nothing and says so once in the log.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from core.audit import Actor, record
from core.mail import Smtp, send_town_reports
from core.settings import Settings

from . import reports

REPORT = "reconciliation"

Role = Literal["regie", "police", "parking", "finance", "other"]


class Recipient(BaseModel):
    """Who receives the town's daily parking reports."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    role: Role = Field("regie", description="regie, police, parking, finance or other")


# --- recipients -----------------------------------------------------------------------


def recipients(conn: psycopg.Connection) -> list[Recipient]:
    """The tenant's recipients, by e-mail."""
    rows = conn.execute(
        "SELECT email, role FROM parking_report_recipients ORDER BY email"
    ).fetchall()
    return [Recipient(email=email, role=role) for email, role in rows]


def replace_recipients(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, wanted: list[Recipient]
) -> list[Recipient]:
    """Make the tenant's recipients exactly `wanted` (e-mails compared in lower case)."""
    unique = {r.email.lower(): r.role for r in wanted}
    conn.execute("DELETE FROM parking_report_recipients WHERE tenant_id = %s", (tenant_id,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO parking_report_recipients (tenant_id, email, role) VALUES (%s, %s, %s)",
            [(tenant_id, email, role) for email, role in unique.items()],
        )
    record(conn, actor, "parking.report_recipients", details={"recipients": sorted(unique)})
    return recipients(conn)


# --- the message ----------------------------------------------------------------------


def _euros(value: Any) -> str:
    return f"{value:.2f}".replace(".", ",") + " €"


def build_message(
    report: reports.Reconciliation, *, town: str, sender: str, to: list[str]
) -> EmailMessage:
    """The reconciliation e-mail, in French, with the CSV and the PDF attached."""
    day = reports.french_date(report.day)
    total = report.total
    message = EmailMessage()
    message["Subject"] = f"Rapprochement stationnement du {day} – {town}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    lines = [
        "Bonjour,",
        "",
        f"Voici le rapprochement des sessions de stationnement payant terminées le {day}"
        f" ({town}, heure locale {report.timezone}).",
        "",
        f"Sessions : {total.sessions}",
        f"Durée totale : {total.minutes} minutes",
        f"Redevance de stationnement : {_euros(total.amount)}",
        f"Services des opérateurs : {_euros(total.service_amount)}",
        f"Total : {_euros(total.total)}",
        "",
    ]
    if report.lines:
        lines.append("Par opérateur et par zone :")
        for line in report.lines:
            label = reports.SOURCE_LABELS.get(line.source, line.source)
            lines.append(f"- {label} {line.provider}, zone {line.zone} : {line.sessions}"
                         f" session(s), {_euros(line.total)}")  # fmt: skip
        lines.append("")
    else:
        lines += ["Aucune session ne s'est terminée ce jour-là.", ""]
    if total.unpriced:
        lines += [f"{total.unpriced} session(s) sans montant communiqué, comptée(s) 0,00 €.", ""]
    lines += [
        "Le détail des sessions est joint au format CSV (tableur) et PDF.",
        "",
        "Message automatique de civicsense, merci de ne pas y répondre.",
    ]
    message.set_content("\n".join(lines))
    stem = f"rapprochement-{report.day.isoformat()}"
    message.add_attachment(reports.to_csv(report), maintype="text", subtype="csv",
                           filename=f"{stem}.csv", params={"charset": "utf-8"})  # fmt: skip
    message.add_attachment(reports.to_pdf(report, town), maintype="application",
                           subtype="pdf", filename=f"{stem}.pdf")  # fmt: skip
    return message


# --- sending --------------------------------------------------------------------------


_CLAIM = """
INSERT INTO parking_report_deliveries (tenant_id, report, day, recipients, message_id)
VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING day
"""


def send_daily(
    conn: psycopg.Connection, smtp: Smtp, *, tenant_id: int, day: date, sender: str
) -> bool:
    """Send `day`'s reconciliation to the tenant's recipients unless already sent; whether
    it was sent now. Runs in the caller's transaction, with the tenant set."""
    to = [r.email for r in recipients(conn)]
    if not to:
        return False
    town, tz = reports.tenant_info(conn, tenant_id)
    message = build_message(reports.reconciliation(conn, day, tz), town=town, sender=sender,
                            to=to)  # fmt: skip
    claimed = conn.execute(
        _CLAIM, (tenant_id, REPORT, day, to, str(message["Message-ID"]))
    ).fetchone()
    if claimed is None:
        return False
    smtp.send(message)
    return True


def run_job(settings: Settings, now: datetime | None = None) -> int:
    """Scheduled: yesterday's reconciliation to every tenant past its report hour; how
    many e-mails were sent."""

    def send(conn: psycopg.Connection, smtp: Smtp, tenant_id: int, zone: ZoneInfo,
             at: datetime) -> bool:  # fmt: skip
        day = reports.yesterday(zone, at)
        return send_daily(conn, smtp, tenant_id=tenant_id, day=day, sender=settings.smtp_from)

    return send_town_reports(settings, "parking reconciliations", send, now or datetime.now(UTC))
