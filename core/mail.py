"""Sending e-mail through the configured SMTP server (`smtp_url`), for every package."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

__all__ = ["Smtp", "text_message"]


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
