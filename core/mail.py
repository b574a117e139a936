"""Sending e-mail through the configured SMTP server (`smtp_url`), for every package."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import psycopg

from .settings import Settings

__all__ = ["ReportSender", "Smtp", "send_town_reports", "text_message"]

log = logging.getLogger("civicsense.mail")


def text_message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message with the headers mail servers expect (Date, Message-ID)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message


@dataclass(frozen=True)
class Smtp:
    """Where to send: `smtp://user:pass@host:587` (STARTTLS when the server offers it)
    or `smtps://user:pass@host:465` (TLS from the start)."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> Smtp:
        """Parse `url`; ValueError when it is not smtp:// or smtps://."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("smtp_url must look like smtp://user:password@host:587")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if tls else 25),
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def send(self, message: EmailMessage, timeout: float = 30) -> None:
        """Deliver `message` to its To addresses; smtplib errors propagate."""
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.tls:
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=timeout)
        with client:
            client.ehlo()
            if not self.tls and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)


#: `send(conn, smtp, tenant_id, zone, now)`: sends the town's report if it is due and not
#: sent yet, in the caller's transaction (app role, town set); whether it sent one.
ReportSender = Callable[[psycopg.Connection, Smtp, int, ZoneInfo, datetime], bool]
_unconfigured_warned: set[str] = set()


def send_town_reports(settings: Settings, what: str, send: ReportSender, now: datetime) -> int:
    """Run `send` for every town whose local clock has passed `report_hour`; how many
    reports went out.

    Each town in its own transaction as the application role (row-level security), so one
    town's failure does not stop the others and is retried at the next run. Without
    `smtp_url` nothing is sent, and the log says so once per kind of report.
    """
    url = settings.smtp_url.get_secret_value() if settings.smtp_url else ""
    if not url:
        if what not in _unconfigured_warned:
            log.info("%s are not e-mailed: smtp_url is not configured", what)
            _unconfigured_warned.add(what)
        return 0
    smtp = Smtp.from_url(url)
    sent = 0
    with psycopg.connect(settings.database_url) as conn:
        towns = conn.execute("SELECT id, slug, timezone FROM tenants ORDER BY id").fetchall()
        conn.commit()
        for tenant_id, slug, timezone in towns:
            zone = ZoneInfo(timezone)
            if now.astimezone(zone).hour < settings.report_hour:
                continue
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL ROLE civicsense_app")
                    conn.execute("SELECT set_config('civicsense.tenant_id', %s, true)",
                                 (str(tenant_id),))  # fmt: skip
                    if send(conn, smtp, tenant_id, zone, now):
                        sent += 1
                        log.info("%s: sent for %s", what, slug)
            except (OSError, smtplib.SMTPException, psycopg.Error):
                log.exception("%s for %s not sent; retried at the next run", what, slug)
    return sent
