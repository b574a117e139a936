"""Pydantic models of the notifications API: routes, preferences and the outbox."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from .sla import Priority

Channel = Literal["email", "webhook"]
Event = Literal["opened", "assigned", "requalified", "resolved", "closed", "sla_warning",
                "sla_breach", "escalated"]  # fmt: skip
Mode = Literal["immediate", "digest", "off"]
Status = Literal["pending", "sent", "failed", "digest"]
Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", examples=["leak"])]
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _Filters(BaseModel):
    """Which incidents a destination hears of; empty lists mean all."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    categories: list[Category] = Field(default_factory=list, max_length=50,
                                       description="incident categories; empty: all")  # fmt: skip
    min_priority: Priority = Field(
        Priority.P2, description="the least urgent priority sent (P0 is the most urgent)"
    )


class RouteBase(_Filters):
    """A tenant's destination: a mailbox, or a webhook signed with the route's secret."""

    name: str = Field(min_length=1, max_length=200)
    channel: Channel
    target: str = Field(min_length=3, max_length=2000,
                        description="an e-mail address, or the webhook's http(s) URL")  # fmt: skip
    events: list[Event] = Field(default_factory=list, description="events sent; empty: all")


class RouteCreate(RouteBase):
    """A new route; a webhook needs the secret its receiver checks signatures with."""

    secret: SecretStr | None = Field(
        None, min_length=16, max_length=200, description="webhooks only; write-only"
    )

    @model_validator(mode="after")
    def _target_fits_channel(self) -> Self:
        if self.channel == "email":
            if not re.fullmatch(_EMAIL, self.target):
                raise ValueError("an e-mail route's target must be an e-mail address")
            if self.secret is not None:
                raise ValueError("an e-mail route has no secret")
            self.target = self.target.lower()
            return self
        parts = urlsplit(self.target)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("a webhook route's target must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("put no credentials in the URL: the secret signs each call")
        if self.secret is None:
            raise ValueError("a webhook route needs a secret (16 characters at least)")
        return self


class RouteRead(RouteBase):
    """A route as the API shows it: never its secret."""

    id: int
    has_secret: bool
    created_at: datetime


class PreferenceUpdate(_Filters):
    """How the caller wants incident notifications."""

    mode: Mode = Field("immediate", description="immediate e-mails, one daily digest, or none")
    digest_hour: int = Field(7, ge=0, le=23, description="local hour the daily digest is sent")


class PreferenceRead(PreferenceUpdate):
    """The caller's preference (the defaults until they choose)."""

    updated_at: datetime | None = None


class NotificationRead(BaseModel):
    """One queued notification and how its delivery goes."""

    id: int
    channel: Channel
    target: str
    user_id: int | None
    incident_id: int
    event: Event
    subject: str
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
