"""Alert rule and alert routes (under /alerts)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.identity.principal import Scope as Caller
from core.identity.principal import scoped

from . import rule_service
from .rules import CATEGORY, TEMPLATES, Condition, RuleSpec, Scope
from .sla import IncidentClass, Priority

router = APIRouter(prefix="/alerts", tags=["alerts"])

Read = Annotated[Caller, Depends(scoped("alerts:read"))]
Manage = Annotated[Caller, Depends(scoped("alerts:manage"))]


class RuleRead(RuleSpec):
    """A stored rule."""

    model_config = ConfigDict(extra="ignore")

    id: int
    template: str | None
    created_at: datetime
    updated_at: datetime


class RuleUpdate(BaseModel):
    """The fields to change; the rule they make must still be valid."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    category: CATEGORY | None = None
    condition: Condition | None = None
    scope: Scope | None = None
    incident_class: IncidentClass | None = None
    priority: Priority | None = None
    open_incident: bool | None = None
    enabled: bool | None = None


class AlertRead(BaseModel):
    """An alert: pending (its condition has not lasted yet), open or cleared."""

    id: int
    rule_id: int
    rule: str
    category: str
    subject: str
    device_id: int | None
    dev_eui: str | None
    device: str | None
    gateway_id: str | None
    state: Literal["pending", "open", "cleared"]
    started_at: datetime
    opened_at: datetime | None
    last_seen_at: datetime
    repeats: int
    value: float | None
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    cleared_at: datetime | None
    incident_id: int | None


@contextlib.contextmanager
def _domain_errors() -> Iterator[None]:
    try:
        yield
    except rule_service.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except rule_service.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/rules", response_model=list[RuleRead])
def list_rules(scope: Read) -> list[dict[str, Any]]:
    """The town's alert rules."""
    return rule_service.rules(scope.conn)


@router.get("/rules/templates", response_model=dict[str, RuleSpec])
def list_templates(scope: Read) -> dict[str, RuleSpec]:
    """The shipped default rules (leak, classroom CO2, battery, silence, gateway)."""
    return TEMPLATES


@router.post("/rules", response_model=RuleRead, status_code=201)
def create_rule(scope: Manage, body: RuleSpec) -> dict[str, Any]:
    """Add a rule: its condition, the devices it watches, and whether it opens incidents."""
    return rule_service.create_rule(scope.conn, scope.actor, scope.tenant_id, body)


@router.post("/rules/defaults", response_model=list[str])
def install_defaults(scope: Manage) -> list[str]:
    """Add the shipped default rules the town does not have yet; their template ids."""
    return rule_service.install_templates(scope.conn, scope.actor, scope.tenant_id)


@router.get("/rules/{rule_id}", response_model=RuleRead)
def get_rule(scope: Read, rule_id: int) -> dict[str, Any]:
    """One rule."""
    with _domain_errors():
        return rule_service.rule(scope.conn, rule_id)


@router.patch("/rules/{rule_id}", response_model=RuleRead)
def update_rule(scope: Manage, rule_id: int, body: RuleUpdate) -> dict[str, Any]:
    """Change a rule (`enabled: false` pauses it)."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise HTTPException(422, "fields cannot be set to null")
    with _domain_errors():
        try:
            return rule_service.update_rule(scope.conn, scope.actor, rule_id, changes)
        except ValidationError as exc:
            detail = exc.errors(include_url=False, include_context=False, include_input=False)
            raise HTTPException(422, detail) from None


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(scope: Manage, rule_id: int) -> Response:
    """Delete a rule that never opened an incident (disable the others)."""
    with _domain_errors():
        rule_service.delete_rule(scope.conn, scope.actor, rule_id)
    return Response(status_code=204)


@router.get("", response_model=list[AlertRead])
def list_alerts(
    scope: Read,
    state: Literal["pending", "open", "cleared"] | None = None,
    rule_id: int | None = None,
    device_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The town's alerts, newest first."""
    return rule_service.alerts(scope.conn, state=state, rule_id=rule_id, device_id=device_id,
                               limit=limit, offset=offset)  # fmt: skip


@router.post("/{alert_id}/acknowledge", response_model=AlertRead)
def acknowledge(scope: Manage, alert_id: int) -> dict[str, Any]:
    """Say the alert has been seen (it stays open until its clear condition holds)."""
    with _domain_errors():
        return rule_service.acknowledge(scope.conn, scope.actor, alert_id)
