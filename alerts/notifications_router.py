"""`/notifications`: the tenant's routes, each user's preference, and the outbox."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from core import audit, crypto
from core.identity.principal import Scope, scoped

from . import notify
from .notification_models import (
    NotificationRead,
    PreferenceRead,
    PreferenceUpdate,
    RouteCreate,
    RouteRead,
    Status,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])

Manager = Annotated[Scope, Depends(scoped("alerts:manage"))]
Member = Annotated[Scope, Depends(scoped("alerts:read"))]


@router.get("/routes", response_model=list[RouteRead])
def list_routes(scope: Manager) -> list[dict[str, Any]]:
    """The tenant's routes; webhook secrets are never shown (`has_secret`)."""
    return notify.get_routes(scope.conn)


@router.post("/routes", response_model=RouteRead, status_code=status.HTTP_201_CREATED)
def create_route(scope: Manager, body: RouteCreate) -> dict[str, Any]:
    """A new mailbox or signed webhook receiving the tenant's incident notifications."""
    try:
        secret = (
            crypto.encrypt(scope.settings, body.secret.get_secret_value()) if body.secret else None
        )
    except crypto.SecretKeyMissing as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    fields = body.model_dump(exclude={"secret"})
    try:
        with scope.conn.transaction():
            row = notify.create_route(
                scope.conn,
                tenant_id=scope.tenant_id,
                route=fields,
                secret_encrypted=secret,
                created_by=scope.principal.id if scope.principal.kind == "user" else None,
            )
    except psycopg.errors.UniqueViolation:
        detail = f"a {body.channel} route to this target already exists"
        raise HTTPException(status.HTTP_409_CONFLICT, detail) from None
    audit.record(scope.conn, scope.actor, "notifications.route.create", target=str(row["id"]),
                 details={k: fields[k] for k in ("name", "channel", "categories", "events",
                                                 "min_priority")})  # fmt: skip
    return row


@router.delete("/routes/{route_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_route(scope: Manager, route_id: int) -> Response:
    """Stop sending to a route; what it was sent stays in the outbox."""
    row = notify.delete_route(scope.conn, route_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no notification route {route_id}")
    audit.record(scope.conn, scope.actor, "notifications.route.delete", target=str(route_id),
                 details={"name": row["name"], "channel": row["channel"]})  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/preferences", response_model=PreferenceRead)
def get_preferences(scope: Member) -> dict[str, Any]:
    """How the caller is notified (the defaults until they choose)."""
    found = notify.get_preference(scope.conn, _own_user_id(scope))
    return found or PreferenceRead().model_dump()


@router.put("/preferences", response_model=PreferenceRead)
def put_preferences(scope: Member, body: PreferenceUpdate) -> dict[str, Any]:
    """Choose immediate e-mails, a daily digest or nothing, and for which incidents."""
    user_id = _own_user_id(scope)
    row = notify.put_preference(scope.conn, tenant_id=scope.tenant_id, user_id=user_id,
                                preference=body.model_dump())  # fmt: skip
    audit.record(scope.conn, scope.actor, "notifications.preferences", target=str(user_id),
                 details=body.model_dump(mode="json"))  # fmt: skip
    return row


@router.get("", response_model=list[NotificationRead])
def list_notifications(
    scope: Manager,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    incident_id: int | None = None,
    before_id: Annotated[int | None, Query(description="page: ids below this one")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """The tenant's outbox, newest first: delivery status, attempts and the last error."""
    return notify.get_outbox(scope.conn, status=status_, incident_id=incident_id,
                             before_id=before_id, limit=limit)  # fmt: skip


def _own_user_id(scope: Scope) -> int:
    """The calling user's id; 403 for an API key (preferences belong to people)."""
    if scope.principal.kind != "user":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "notification preferences belong to users")
    return scope.principal.id
