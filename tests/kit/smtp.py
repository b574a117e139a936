"""A real SMTP server for tests (aiosmtpd on a free loopback port) keeping what it gets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """One delivered message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """The aiosmtpd handler: every accepted message, in order."""

    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class SmtpServer:
    """A running server: where it listens, and what it received."""

    host: str
    port: int
    mailbox: Mailbox

    @property
    def url(self) -> str:
        """For the `smtp_url` setting."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        """What it received so far."""
        return list(self.mailbox.messages)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(host: str = "127.0.0.1") -> Iterator[SmtpServer]:
    """Run an SMTP server until the block ends."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname=host, port=_free_port(host))
    controller.start()
    try:
        yield SmtpServer(host, controller.port, mailbox)
    finally:
        controller.stop()
