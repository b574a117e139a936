"""Logging of every civicsense command: text lines for a terminal, or JSON lines (time,
level, logger, message, and request_id / event_id when known) for a log collector.

The request id of the HTTP request being served lives in a context variable, set by
`RequestIdMiddleware`, and every record emitted meanwhile carries it. Ingest's records
about one event pass its deduplicationId as `extra={"event_id": ...}`.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from typing import Literal

from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("civicsense_request_id", default=None)
REQUEST_ID_HEADER = "X-Request-ID"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_IDS = ("request_id", "event_id")
# a caller's id is kept when it is a plain token (a UUID, a proxy's trace id), else replaced
_SANE_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class _RequestContext(logging.Filter):
    """Gives each record the request id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class _TextFormatter(logging.Formatter):
    """The classic line, with the ids known appended: `... [request_id=...]`."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        known = ((name, getattr(record, name, None)) for name in _IDS)
        ids = " ".join(f"{name}={value}" for name, value in known if value is not None)
        return f"{line} [{ids}]" if ids else line


def formatter(fmt: Literal["text", "json"]) -> logging.Formatter:
    """The formatter of `fmt` lines."""
    if fmt == "json":
        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    return _TextFormatter(TEXT_FORMAT)


def configure(level: str, fmt: Literal["text", "json"]) -> None:
    """Log to stderr at `level` in `fmt` (unless logging was set up already, as under pytest);
    the libraries' chatter only from WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestContext())
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for chatty in ("yoyo", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def _caller_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode() if _SANE_ID.fullmatch(value) else None
    return None


class RequestIdMiddleware:
    """ASGI middleware: the request's id (the caller's X-Request-ID when it is a sane
    token, else a new one) in `REQUEST_ID` while it is served, and in the response's
    X-Request-ID header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _caller_id(scope) or uuid.uuid4().hex
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
