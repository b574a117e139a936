"""Pydantic models of payment sessions: provider events, the built-in API, batches."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from .models import BAY_CODE, ZONE_CODE

Money = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
ExternalId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class SessionFacts(_Strict):
    """What the payer's operator knows of a session; every event carries all of it."""

    id: ExternalId = Field(description="the operator's session id")
    plate: str = Field(min_length=1, max_length=20)
    zone: str = Field(pattern=ZONE_CODE, description="tariff zone code, as on the signs")
    bay: str | None = Field(None, pattern=BAY_CODE)
    started_at: AwareDatetime
    ends_at: AwareDatetime | None = Field(None, description="paid until (chosen duration)")
    stopped_at: AwareDatetime | None = None
    amount: Money | None = Field(None, description="public parking fee so far, EUR")
    service_amount: Money = Field(Decimal(0), description="operator's own services, EUR")

    @model_validator(mode="after")
    def _ordered(self) -> SessionFacts:
        if self.ends_at is not None and self.ends_at <= self.started_at:
            raise ValueError("ends_at must be after started_at")
        if self.stopped_at is not None and self.stopped_at < self.started_at:
            raise ValueError("stopped_at must not be before started_at")
        return self


EventType = Literal["session.started", "session.extended", "session.stopped"]


class ProviderEvent(_Strict):
    """A signed webhook body from a payment operator."""

    event_id: ExternalId
    type: EventType
    occurred_at: AwareDatetime
    tenant: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="the town's slug")
    session: SessionFacts

    @model_validator(mode="after")
    def _complete(self) -> ProviderEvent:
        if self.type == "session.stopped" and self.session.stopped_at is None:
            raise ValueError("a session.stopped event carries session.stopped_at")
        if self.type == "session.extended" and self.session.ends_at is None:
            raise ValueError("a session.extended event carries the new session.ends_at")
        return self


class SessionStart(_Strict):
    """Start a session with the town's own payment service."""

    plate: str = Field(min_length=1, max_length=20)
    zone: str = Field(pattern=ZONE_CODE)
    bay: str | None = Field(None, pattern=BAY_CODE)
    duration_minutes: int | None = Field(
        None, ge=1, le=24 * 60, description="paid duration; none: pay at stop for the time parked"
    )


class SessionExtend(_Strict):
    """More paid time for a session started with a duration."""

    minutes: int = Field(ge=1, le=24 * 60)


class SessionRead(BaseModel):
    """A payment session as the API returns it."""

    id: int
    source: str
    provider: str
    external_id: str
    plate: str
    zone: str
    bay: str | None
    started_at: datetime
    ends_at: datetime | None
    stopped_at: datetime | None
    amount: Decimal | None
    service_amount: Decimal
    currency: str


class BatchItem(SessionFacts):
    """One session a pay station sold while offline, with its original times."""


class SessionBatch(_Strict):
    """Sessions a pay station kept while offline; accepted once per (station, batch_id)."""

    station: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    batch_id: ExternalId
    sessions: list[BatchItem] = Field(min_length=1, max_length=5000)


class BatchItemResult(BaseModel):
    """What became of one item of a batch."""

    index: int
    id: str
    status: Literal["accepted", "unchanged", "rejected"]
    session_id: int | None = None
    reason: str | None = None


class BatchReport(BaseModel):
    """The answer to a batch; the same answer again when the batch is re-sent."""

    station: str
    batch_id: str
    replayed: bool
    accepted: int
    rejected: int
    items: list[BatchItemResult]
