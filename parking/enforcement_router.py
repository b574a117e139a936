"""The control map's routes: the bay-status feed (GeoJSON, ETag, Server-Sent Events),
plate checks, the unpaid list and enforcement actions with their photos."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Collection, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from core import audit, uploads
from core.identity.principal import Acting, Scope, acting, scoped, tenant_connection
from core.uploads import PhotoUpload

from . import action_photos, enforcement, feed
from .action_photos import ActionPhotoRead
from .enforcement import ActionCreate, ActionRead, PlateCheck
from .feed import Snapshot, ZonePart
from .live import LiveFeed
from .places import NotFound

router = APIRouter()

Read = Annotated[Scope, Depends(scoped("parking:read"))]
Enforce = Annotated[Scope, Depends(scoped("parking:enforce"))]
Watch = Annotated[Acting, Depends(acting("parking:read"))]
STATUSES = ("free", "paid", "grace", "unpaid", "overstay", "unknown", "unregulated", "unverified")
HEARTBEAT_S = 15.0
TICK_S = 2.0  # a stream looks for a disconnected client at least this often
DUE_MARGIN_S = 0.005  # a stream wakes this much after a zone falls due, not just before
RENDERED_PER_SNAPSHOT = 64  # serialised bodies kept per snapshot (zone × status filters)


def current(request: Request, conn: psycopg.Connection, tenant_id: int) -> Snapshot:
    """The tenant's snapshot now, shared with every other caller of the tenant."""
    live = request.app.state.parking_live
    return live.get(tenant_id, partial(feed.zone_parts, conn))  # type: ignore[no-any-return]


def _features(part: ZonePart, statuses: set[str] | None, with_plates: bool) -> list[dict[str, Any]]:
    """The zone's features with one of `statuses` (all when None), plates for agents."""
    features = []
    for code, feature in part.features.items():
        properties = feature["properties"]
        if statuses is not None and properties["status"] not in statuses:
            continue
        if with_plates:
            feature = {**feature, "properties": {**properties, "plate": part.plates.get(code)}}
        features.append(feature)
    return features


def _collection(
    snapshot: Snapshot, zone: str | None, statuses: set[str] | None, with_plates: bool,
    parts: Iterable[ZonePart] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The feed's FeatureCollection: the features of `parts` (default: every zone's), and
    the summaries of every zone, restricted to `zone` when given."""
    chosen = snapshot.parts.values() if parts is None else parts
    features = [
        feature
        for part in chosen
        if zone is None or part.summary.code == zone
        for feature in _features(part, statuses, with_plates)
    ]
    zones = {
        code: {"regulated": z.regulated, "next_change": z.next_change,
               "unpaid_count": z.unpaid_count, "unassigned_sessions": z.unassigned_sessions}
        for code, z in snapshot.zones.items() if zone is None or code == zone
    }  # fmt: skip
    return {"type": "FeatureCollection", "computed_at": snapshot.at, "zones": zones,
            "features": features}  # fmt: skip


def _statuses(value: str | None) -> set[str] | None:
    if value is None:
        return None
    chosen = {s.strip() for s in value.split(",") if s.strip()}
    unknown = chosen - set(STATUSES)
    if unknown:
        raise HTTPException(422, f"unknown status {sorted(unknown)}; one of {', '.join(STATUSES)}")
    return chosen


def _render(
    snapshot: Snapshot, zone: str | None, statuses: set[str] | None, with_plates: bool
) -> tuple[bytes, str]:
    body = orjson.dumps(_collection(snapshot, zone, statuses, with_plates))
    return body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@router.get("/bays/status", tags=["parking enforcement"])
def bay_status(
    request: Request,
    scope: Read,
    zone: str | None = None,
    status_filter: Annotated[str | None, Query(alias="status", description="comma list")] = None,
) -> Response:
    """Every bay's status now as a GeoJSON FeatureCollection (plates for agents only).
    Poll with If-None-Match: an unchanged feed answers 304. Live: /bays/events."""
    snapshot = current(request, scope.conn, scope.tenant_id)
    with_plates = "parking:enforce" in scope.principal.permissions
    statuses = _statuses(status_filter)
    key = (zone, frozenset(statuses) if statuses else None, with_plates)
    body, etag = snapshot.rendered.get(key) or _render(snapshot, zone, statuses, with_plates)
    if len(snapshot.rendered) < RENDERED_PER_SNAPSHOT:  # agents polling alike share one
        snapshot.rendered[key] = (body, etag)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/geo+json", headers=headers)


def _snapshot_for(request: Request, tenant_id: int) -> Snapshot:
    """The tenant's snapshot; a database connection is taken only to recompute zones."""

    def compute(now: datetime, zone_ids: Collection[int] | None) -> dict[int, ZonePart]:
        with tenant_connection(request, tenant_id) as conn:
            return feed.zone_parts(conn, now, zone_ids)

    return request.app.state.parking_live.get(tenant_id, compute)  # type: ignore[no-any-return]


def _wait_s(live: LiveFeed, tenant_id: int) -> float:
    """How long a stream may sleep: until a zone falls due (a clock-driven change), at most
    TICK_S."""
    due = live.seconds_to_due(tenant_id)
    return TICK_S if due is None else min(TICK_S, max(due, 0.0) + DUE_MARGIN_S)


@router.get("/bays/events", tags=["parking enforcement"])
async def bay_events(request: Request, caller: Watch, zone: str | None = None) -> StreamingResponse:
    """Server-Sent Events: `bays` events carry the features whose status changed (the
    first one carries them all), as soon as a sensor event or a payment is committed or
    the clock changes a status (a grace period ends)."""
    live = request.app.state.parking_live
    with_plates = "parking:enforce" in caller.principal.permissions

    async def stream() -> AsyncIterator[bytes]:
        sent: dict[str, tuple[Any, ...]] = {}
        sent_parts: dict[int, ZonePart] = {}  # the zone parts already diffed
        last_write = time.monotonic()
        last: Snapshot | None = None
        while not await request.is_disconnected():
            snapshot = await asyncio.to_thread(_snapshot_for, request, caller.tenant_id)
            if snapshot is not last:  # a reused snapshot has nothing new
                last = snapshot
                fresh = [p for p in snapshot.parts.values() if sent_parts.get(p.zone_id) is not p]
                sent_parts = dict(snapshot.parts)
                collection = _collection(snapshot, zone, None, with_plates, fresh)
                changed = []
                for feature in collection["features"]:
                    p = feature["properties"]
                    key = (p["status"], p["since"], p["session_id"], p.get("plate"))
                    if sent.get(p["bay"]) != key:
                        sent[p["bay"]] = key
                        changed.append(feature)
                if changed:
                    collection["features"] = changed
                    yield b"event: bays\ndata: " + orjson.dumps(collection) + b"\n\n"
                    last_write = time.monotonic()
            if time.monotonic() - last_write >= HEARTBEAT_S:
                yield b": keep-alive\n\n"
                last_write = time.monotonic()
            await live.wait(caller.tenant_id, _wait_s(live, caller.tenant_id))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/enforcement/plates/{plate}", response_model=PlateCheck,
            tags=["parking enforcement"])  # fmt: skip
def check_plate(scope: Enforce, plate: str, zone: str | None = None) -> PlateCheck:
    """Is this plate paid now, until when, in which zone? Every lookup is audited."""
    try:
        return enforcement.check_plate(scope.conn, scope.actor, plate, zone, datetime.now(UTC))
    except ValueError as exc:
        raise HTTPException(422, f"plate: {exc}") from None


@router.get("/enforcement/unpaid", tags=["parking enforcement"])
def unpaid(request: Request, scope: Enforce, zone: str | None = None) -> list[dict[str, Any]]:
    """Unpaid and overstaying bays, the longest-standing first."""
    return enforcement.to_check(current(request, scope.conn, scope.tenant_id), zone)


@router.post("/enforcement/actions", response_model=ActionRead, status_code=201,
             tags=["parking enforcement"])  # fmt: skip
def record_action(request: Request, scope: Enforce, body: ActionCreate) -> dict[str, Any]:
    """Record an FPS (with its amount), a warning or no action on a bay and/or plate."""
    snapshot = current(request, scope.conn, scope.tenant_id)
    try:
        return enforcement.record_action(scope.conn, scope.actor, scope.tenant_id, body, snapshot)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, f"plate: {exc}") from None


@router.get("/enforcement/actions", response_model=list[ActionRead],
            tags=["parking enforcement"])  # fmt: skip
def list_actions(
    scope: Enforce, since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Recorded actions, newest first."""
    return enforcement.actions(scope.conn, since=since, limit=limit)


def _action(scope: Scope, action_id: int) -> dict[str, Any]:
    try:
        return enforcement.action(scope.conn, action_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


@router.put(
    "/enforcement/actions/{action_id}/photo", response_model=ActionPhotoRead,
    openapi_extra=uploads.UPLOAD_OPENAPI, tags=["parking enforcement"],
    responses={**uploads.UPLOAD_RESPONSES, 409: {"description": "the action has its photo"}},
)  # fmt: skip
def put_action_photo(
    scope: Enforce, action_id: int,
    upload: Annotated[PhotoUpload, Depends(uploads.photo_upload)],
) -> dict[str, Any]:  # fmt: skip
    """Attach the action's photo, once: it is evidence, so a second upload is refused (409)
    and nothing deletes it. The body is the image itself; it is re-encoded as a JPEG
    without its metadata (EXIF GPS...). The audit entry keeps its SHA-256, not its bytes."""
    found = _action(scope, action_id)
    already = HTTPException(
        status.HTTP_409_CONFLICT,
        f"enforcement action {action_id} already has its photo: evidence is never replaced",
    )
    if found["has_photo"]:
        raise already
    image = upload.clean()
    row = action_photos.add(
        scope.conn, tenant_id=scope.tenant_id, action_id=action_id, image=image,
        uploaded_by=scope.actor.label,
    )  # fmt: skip
    if row is None:  # a concurrent upload came first
        raise already
    details = {"action_id": action_id, **upload.audit_details(image), "sha256": row["sha256"]}
    audit.record(
        scope.conn, scope.actor, "parking.enforcement.photo", target=found["bay"], details=details
    )
    return row


@router.get(
    "/enforcement/actions/{action_id}/photo", response_class=Response,
    responses=uploads.PHOTO_RESPONSES, tags=["parking enforcement"],
)  # fmt: skip
def get_action_photo(scope: Enforce, action_id: int) -> Response:
    """The action's photo, a JPEG; 404 if it has none."""
    found = action_photos.image_of(scope.conn, action_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no photo of enforcement action {action_id}"
        )
    return uploads.photo_response(*found)
