"""Payment-session routes: operators' signed webhooks, the built-in session API for towns
without an operator, and pay stations' offline batches."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import ValidationError

from core import audit, crypto, metrics
from core.audit import Actor
from core.identity.principal import Scope, client_address, scoped, tenant_connection
from core.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify

from . import intake, sessions
from .places import NotFound
from .session_models import (
    BatchReport,
    ProviderEvent,
    SessionBatch,
    SessionExtend,
    SessionRead,
    SessionStart,
)

router = APIRouter(tags=["parking sessions"])

Sell = Annotated[Scope, Depends(scoped("parking:sessions"))]
Read = Annotated[Scope, Depends(scoped("parking:read"))]
MAX_EVENT_BYTES = 64 * 1024
_SECRET = """
SELECT t.id, p.secret_encrypted FROM payment_providers p JOIN tenants t ON t.id = p.tenant_id
WHERE t.slug = %s AND p.provider = %s AND p.revoked_at IS NULL
"""


def _unprocessable(detail: object) -> HTTPException:
    return HTTPException(422, detail)


def _rejected(reason: str, error: HTTPException) -> HTTPException:
    """`error`, counted in the webhook metrics under `reason` (a fixed word)."""
    metrics.PAYMENT_WEBHOOKS_REJECTED.labels(reason).inc()
    return error


def _refuse(request: Request, actor: Actor, reason: str, code: int = 401) -> HTTPException:
    """Audit a refused webhook (its own transaction: the request fails) and answer it."""
    with request.app.state.privileged_pool.connection() as conn:
        audit.record(conn, actor, "parking.webhook", outcome="denied", details={"reason": reason})
    return HTTPException(code, reason)


@router.post("/providers/{provider}/events", tags=["payment webhooks"])
async def provider_event(
    request: Request,
    provider: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")],
) -> dict[str, Any]:
    """A session started / extended / stopped at a payment operator, signed with its secret
    (X-Civicsense-Timestamp, X-Civicsense-Signature: sha256=HMAC(secret, "ts." + body)).

    Refused: unsigned, badly signed, more than 5 minutes old, the same signed request
    twice (409). The same event id again is accepted and changes nothing."""
    body = await request.body()
    actor = Actor("system", f"provider:{provider}", source=client_address(request))
    if len(body) > MAX_EVENT_BYTES:
        too_large = HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "event too large")
        raise _rejected("too_large", too_large)
    try:
        slug = orjson.loads(body).get("tenant")
    except (orjson.JSONDecodeError, AttributeError):
        raise _rejected("invalid_json", _unprocessable("body must be a JSON object")) from None
    settings = request.app.state.settings
    with request.app.state.privileged_pool.connection() as conn:
        found = conn.execute(_SECRET, (str(slug), provider)).fetchone()
    if found is None:
        refusal = _refuse(request, actor, "unknown provider for this tenant, or revoked")
        raise _rejected("unknown_provider", refusal)
    tenant_id, secret = int(found[0]), crypto.decrypt(settings, bytes(found[1]))
    actor = Actor("system", f"provider:{provider}", tenant_id=tenant_id, source=actor.source)
    try:
        digest = verify(secret, request.headers.get(TIMESTAMP_HEADER),
                        request.headers.get(SIGNATURE_HEADER), body, time.time())  # fmt: skip
    except SignatureError as exc:
        raise _rejected("bad_signature", _refuse(request, actor, str(exc))) from None
    try:
        event = ProviderEvent.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise _rejected("invalid_event", _unprocessable(errors)) from None
    with tenant_connection(request, tenant_id) as conn:
        try:
            applied = intake.apply_provider_event(conn, tenant_id, provider, event, digest)
        except intake.Replayed as exc:
            raise _rejected("replayed", HTTPException(status.HTTP_409_CONFLICT, str(exc))) from None
        except sessions.Refused as exc:
            raise _rejected("refused", _unprocessable(str(exc))) from None
    metrics.PAYMENT_WEBHOOKS_ACCEPTED.inc()
    return applied


@router.post("/sessions", response_model=SessionRead, status_code=201)
def start_session(scope: Sell, body: SessionStart) -> dict[str, Any]:
    """Start a session (town's own payment service): plate, zone code, optional bay and
    paid duration; without a duration it runs until stopped and is charged then."""
    try:
        return sessions.start(scope.conn, scope.actor, scope.tenant_id, body, _now())
    except sessions.Refused as exc:
        raise _unprocessable(str(exc)) from None


@router.get("/sessions", response_model=list[SessionRead])
def list_sessions(
    scope: Read,
    zone: str | None = None,
    active_at: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Sessions, newest first; `active_at` keeps those covering that instant."""
    return sessions.search(scope.conn, zone=zone, active_at=active_at, limit=limit)


def _changed(change: Any) -> dict[str, Any]:
    try:
        return change()  # type: ignore[no-any-return]
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except sessions.Refused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/sessions/{session_id}/extend", response_model=SessionRead)
def extend_session(scope: Sell, session_id: int, body: SessionExtend) -> dict[str, Any]:
    """More paid time (regulated minutes added to the paid end)."""
    return _changed(lambda: sessions.extend(
        scope.conn, scope.actor, scope.tenant_id, session_id, body.minutes, _now()))  # fmt: skip


@router.post("/sessions/{session_id}/stop", response_model=SessionRead)
def stop_session(scope: Sell, session_id: int) -> dict[str, Any]:
    """Stop now: the amount is the zone's tariff for the regulated time really parked."""
    return _changed(lambda: sessions.stop(
        scope.conn, scope.actor, scope.tenant_id, session_id, _now()))  # fmt: skip


@router.post("/sessions/batches", response_model=BatchReport)
def session_batch(scope: Sell, body: SessionBatch) -> dict[str, Any]:
    """Sessions a pay station sold offline, with their original times. Each is accepted
    or rejected with a reason; re-sending the batch changes nothing and gives the same
    report again (`replayed: true`)."""
    return intake.apply_batch(scope.conn, scope.actor, scope.tenant_id, body)


def _now() -> datetime:
    return datetime.now(UTC)
