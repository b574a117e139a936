"""What the incident API reads and returns: requests (open, transition, re-qualify, assign,
comment, publish) and the incident with its clocks, history and attachments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from .sla import ClockState, IncidentClass, Priority
from .workflow import TRANSITIONS, State, Transition

CATEGORY = r"^[a-z][a-z0-9_]{1,39}$"
_TEXT = r"^[^\x00]*$"  # PostgreSQL text holds no NUL


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: An instant as the API returns it: ISO 8601 in UTC, whatever the session's time zone.
Utc = Annotated[datetime, AfterValidator(_utc)]


class Requester(BaseModel):
    """Who asked (a resident, an elected official, a member of staff) and how to reach them.

    Personal data: only callers holding alerts:read of the town see it, it is never written
    to the audit trail or to logs, and never to the public status list."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, pattern=_TEXT)
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(None, pattern=r"^\+?[0-9 .()-]{6,25}$")
    kind: Literal["resident", "elected", "staff"] = "resident"

    @field_validator("email")
    @classmethod
    def _lowercase(cls, value: str | None) -> str | None:
        return None if value is None else value.lower()


class _Planned(BaseModel):
    """A planned intervention's span: an end only after a start."""

    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.planned_end is not None and (
            self.planned_start is None or self.planned_end <= self.planned_start
        ):
            raise ValueError("planned_end needs a planned_start before it")
        return self


class IncidentCreate(_Planned):
    """An incident opened by a person: a finding of staff (`user`) or a resident's or an
    elected official's request (`request`, which names its requester). Incidents from
    alerts are opened by the rule engine, never through the API. Making it public or
    planning an intervention needs alerts:manage."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200, pattern=_TEXT)
    description: str | None = Field(None, max_length=5000, pattern=_TEXT)
    incident_class: IncidentClass
    priority: Priority | None = Field(None, description="default: from the class (bloquant P0…)")
    source: Literal["user", "request"] = "user"
    category: str = Field("other", pattern=CATEGORY)
    device_id: int | None = Field(None, ge=1)
    site: str | None = Field(None, max_length=200, pattern=_TEXT)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    requester: Requester | None = None
    public: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.source == "request" and self.requester is None:
            raise ValueError("a request names its requester")
        return self

    @property
    def publishing(self) -> bool:
        """Whether it sets what only alerts managers may set."""
        return self.public or self.planned_start is not None


class IncidentPublication(_Planned):
    """Whether the incident is on the town's public status list, and its planned
    intervention (null clears it). Fields left out are kept."""

    model_config = ConfigDict(extra="forbid")

    public: bool | None = None


class TransitionRequest(BaseModel):
    """A step of the workflow; `auto_close` is the scheduler's and refused here."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    transition: Transition
    reason: str | None = Field(None, max_length=5000, pattern=_TEXT)

    @field_validator("transition")
    @classmethod
    def _by_a_person(cls, value: Transition) -> Transition:
        if TRANSITIONS[value].automatic:
            raise ValueError(f"{value} is applied by the scheduler only; use close")
        return value


class RequalifyRequest(BaseModel):
    """A new class (and priority, by default the class's): the reason is kept in the history."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    incident_class: IncidentClass
    priority: Priority | None = None
    reason: str = Field(min_length=3, max_length=5000, pattern=_TEXT)


class AssignRequest(BaseModel):
    """Who works on the incident (null: nobody)."""

    model_config = ConfigDict(extra="forbid")

    assignee_id: int | None = Field(ge=1)


class CommentCreate(BaseModel):
    """A comment in the incident's history."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    body: str = Field(min_length=1, max_length=5000, pattern=_TEXT)


class ClockRead(BaseModel):
    """One service-level clock at the time of the answer."""

    state: ClockState
    delay_seconds: float = Field(description="the counted time allowed")
    deadline: Utc | None = Field(description="null while a pause holds the clock")
    remaining_seconds: float | None = Field(
        description="counted time left (negative once breached); null once reached"
    )
    reached_at: Utc | None


class AttachmentRead(BaseModel):
    """A stored attachment, without its bytes."""

    id: int
    incident_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    uploaded_by: str
    uploaded_at: Utc


class IncidentSummary(BaseModel):
    """An incident in a list."""

    id: int
    title: str
    category: str
    incident_class: IncidentClass
    priority: Priority
    state: State
    source: str
    site: str | None
    device_id: int | None
    assignee_id: int | None
    public: bool
    opened_at: Utc
    gti_due_at: Utc | None
    gtr_due_at: Utc | None
    resolved_at: Utc | None
    closed_at: Utc | None


class IncidentRead(IncidentSummary):
    """One incident with its clocks, what may be done next and its attachments."""

    description: str | None
    alert_id: int | None
    lat: float | None
    lon: float | None
    requester: Requester | None = Field(description="only for callers with alerts:read")
    created_by: int | None
    planned_start: Utc | None
    planned_end: Utc | None
    gti_reached_at: Utc | None
    gtr_reached_at: Utc | None
    last_reaction_at: Utc | None
    updated_at: Utc
    clocks: dict[str, ClockRead] = Field(description="`gti` and `gtr`")
    allowed_transitions: list[Transition]
    attachments: list[AttachmentRead]


class EventRead(BaseModel):
    """One line of an incident's history."""

    id: int
    at: Utc
    kind: str
    transition: Transition | None
    actor: str
    body: str | None
    details: dict[str, Any]


class PublicIncident(BaseModel):
    """What the public status list shows of an incident: nothing personal, no device."""

    title: str
    category: str
    state: State
    site: str | None
    opened_at: Utc
    planned_start: Utc | None
    planned_end: Utc | None


class PublicStatus(BaseModel):
    """A town's public status list."""

    town: str
    generated_at: Utc
    incidents: list[PublicIncident]
