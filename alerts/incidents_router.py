"""Incident routes: open, list, read with the service-level clocks, history, workflow steps,
re-qualification, assignment, comments, attachments, publication, the monthly report, and
the town's public status list.

Who may do what: reading needs alerts:read; opening, commenting and attaching
incidents:manage; a workflow step incidents:manage and either being the incident's assignee
or holding alerts:manage (a technician progresses what is assigned to them, a facility
manager anything); assigning, re-qualifying and publishing (public flag, planned
intervention) alerts:manage. Requester contact data is shown only to callers with
alerts:read. The public status list needs no authentication and shows nothing personal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from core import tenants
from core.identity.principal import Scope, scoped, tenant_connection

from . import attachments, incident_report, incidents
from .attachments import AttachmentUpload
from .incident_models import (
    CATEGORY,
    AssignRequest,
    AttachmentRead,
    CommentCreate,
    EventRead,
    IncidentCreate,
    IncidentPublication,
    IncidentRead,
    IncidentSummary,
    PublicStatus,
    RequalifyRequest,
    TransitionRequest,
)
from .incident_report import Month
from .sla import IncidentClass, Priority
from .workflow import IllegalTransitionError, State

router = APIRouter(prefix="/incidents", tags=["incidents"])

Read = Annotated[Scope, Depends(scoped("alerts:read"))]
Work = Annotated[Scope, Depends(scoped("incidents:manage"))]
Manage = Annotated[Scope, Depends(scoped("alerts:manage"))]
PUBLIC_LIMIT = 100
_FILES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """The service's refusals as HTTP answers: an illegal step is a 409 with its reason."""
    try:
        yield
    except IllegalTransitionError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except incidents.IncidentError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _shown(scope: Scope, incident_id: int) -> dict[str, Any]:
    """The incident as this caller may see it: no requester without alerts:read."""
    with _answers():
        found = incidents.get(scope.conn, scope.tenant_id, incident_id)
    if "alerts:read" not in scope.principal.permissions:
        found["requester"] = None
    return found


def _may_manage(scope: Scope, doing: str) -> None:
    if "alerts:manage" not in scope.principal.permissions:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"missing permission: alerts:manage ({doing})"
        )


@router.get("/report", responses=_FILES)
def report(
    scope: Read,
    month: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default: last month")
    ] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """The month's incident report (the town's local month): incidents opened per class and
    priority; GTI and GTR compliance, met / (met + missed), a still-open breached clock
    counting as missed, as the clocks stand now; resolution times in counted hours (the GTR
    clock's: business hours in business mode, waits excluded) and in wall hours (waits
    included): p50, p90 (nearest rank), max and buckets; the open backlog (neither resolved
    nor closed) at the month's end per priority. `format=csv`: one flat table
    `section;key;value`, UTF-8 with BOM, `;` and decimal commas (see
    `alerts.incident_report.to_csv` for its sections)."""
    now = datetime.now(UTC)
    try:
        if month:
            chosen = Month.parse(month)
        else:
            zone = incident_report.town_zone(scope.conn, scope.tenant_id)
            chosen = Month.containing(now, zone).previous()
        found = incident_report.monthly(scope.conn, scope.tenant_id, chosen, at=now)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if format == "json":
        return found
    disposition = f'attachment; filename="incidents-{chosen}.csv"'
    return Response(incident_report.to_csv(found), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition})  # fmt: skip


@router.get("/public/{tenant_slug}", response_model=PublicStatus, tags=["public"])
def public_status(
    request: Request, response: Response, tenant_slug: Annotated[str, Path(max_length=63)]
) -> dict[str, Any]:
    """The town's public status list, for residents, without authentication: its ongoing
    incidents flagged public and its planned interventions (title, category, state, site,
    opening, planned span; never a requester or a device), newest first, 100 at most."""
    with request.app.state.privileged_pool.connection() as conn:
        town = tenants.get(conn, tenant_slug)
    if town is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no town {tenant_slug!r}")
    with tenant_connection(request, town["id"]) as conn:
        listed = incidents.public_status(conn, town["id"], PUBLIC_LIMIT)
    response.headers["Cache-Control"] = "public, max-age=60"
    return {"town": town["name"], "generated_at": datetime.now(UTC), "incidents": listed}


@router.post("", response_model=IncidentRead, status_code=status.HTTP_201_CREATED)
def open_incident(scope: Work, body: IncidentCreate) -> dict[str, Any]:
    """Open an incident: a finding of staff (`user`) or a resident's or an elected
    official's request (`request`, with its requester's contact). Its clocks start now."""
    if body.publishing:
        _may_manage(scope, "public incidents and planned interventions")
    fields = body.model_dump(exclude={"requester"})
    with _answers():
        incident_id = incidents.open_incident(
            scope.conn, scope.actor, scope.tenant_id, requester=body.requester, **fields
        )
    return _shown(scope, incident_id)


@router.get("", response_model=list[IncidentSummary])
def list_incidents(
    scope: Read,
    state: Annotated[list[State] | None, Query(description="repeat for several")] = None,
    priority: Priority | None = None,
    incident_class: Annotated[IncidentClass | None, Query(alias="class")] = None,
    category: Annotated[str | None, Query(pattern=CATEGORY)] = None,
    assignee: Annotated[int | None, Query(ge=1, description="a user id")] = None,
    open_only: Annotated[
        bool, Query(alias="open", description="neither resolved nor closed")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The town's incidents, newest first."""
    return incidents.get_all(
        scope.conn, scope.tenant_id, states=[s.value for s in state or ()],
        priority=priority, incident_class=incident_class, category=category,
        assignee_id=assignee, open_only=open_only, limit=limit, offset=offset,
    )  # fmt: skip


@router.get("/{incident_id}", response_model=IncidentRead)
def get_incident(scope: Read, incident_id: int) -> dict[str, Any]:
    """One incident with its GTI and GTR clocks now (state, deadline, counted time left),
    the workflow steps that apply and its attachments."""
    return _shown(scope, incident_id)


@router.patch("/{incident_id}", response_model=IncidentRead)
def publish(scope: Manage, incident_id: int, body: IncidentPublication) -> dict[str, Any]:
    """Put the incident on the town's public status list (or take it off), and plan its
    intervention (null clears it)."""
    with _answers():
        incidents.publish(
            scope.conn, scope.actor, scope.tenant_id, incident_id,
            body.model_dump(exclude_unset=True),
        )  # fmt: skip
    return _shown(scope, incident_id)


@router.get("/{incident_id}/events", response_model=list[EventRead])
def incident_events(
    scope: Read,
    incident_id: int,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The incident's history, oldest first: opening, steps, re-qualifications with their
    reason, assignments, comments, attachments, SLA notices."""
    with _answers():
        return incidents.events(scope.conn, scope.tenant_id, incident_id, limit=limit,
                                offset=offset)  # fmt: skip


@router.post("/{incident_id}/transitions", response_model=IncidentRead)
def apply_transition(scope: Work, incident_id: int, body: TransitionRequest) -> dict[str, Any]:
    """Take a workflow step: acknowledge, start, wait, resume, resolve, reopen or close
    (409 with the reason when it does not apply). Only the assignee, or a holder of
    alerts:manage, may progress an incident."""
    with _answers():
        incident = incidents.find(scope.conn, scope.tenant_id, incident_id)
        principal = scope.principal
        assignee = principal.kind == "user" and incident["assignee_id"] == principal.id
        if not assignee and "alerts:manage" not in principal.permissions:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "only the incident's assignee or a holder of alerts:manage may progress it",
            )
        incidents.transition(
            scope.conn, scope.actor, scope.tenant_id, incident_id, body.transition,
            reason=body.reason,
        )  # fmt: skip
    return _shown(scope, incident_id)


@router.post("/{incident_id}/requalify", response_model=IncidentRead)
def requalify(scope: Manage, incident_id: int, body: RequalifyRequest) -> dict[str, Any]:
    """Change the class and priority (by default the class's), with the reason why: the new
    priority's delays count from the opening."""
    with _answers():
        incidents.requalify(
            scope.conn, scope.actor, scope.tenant_id, incident_id,
            incident_class=body.incident_class, priority=body.priority, reason=body.reason,
        )  # fmt: skip
    return _shown(scope, incident_id)


@router.post("/{incident_id}/assign", response_model=IncidentRead)
def assign(scope: Manage, incident_id: int, body: AssignRequest) -> dict[str, Any]:
    """Give the incident to an active user of the town holding incidents:manage (null: to
    nobody)."""
    with _answers():
        incidents.assign(scope.conn, scope.actor, scope.tenant_id, incident_id, body.assignee_id)
    return _shown(scope, incident_id)


@router.post("/{incident_id}/comments", response_model=EventRead, status_code=201)
def add_comment(scope: Work, incident_id: int, body: CommentCreate) -> dict[str, Any]:
    """Comment in the incident's history. On a resolved incident a comment is a reaction:
    the automatic closing waits 20 days from it."""
    with _answers():
        return incidents.comment(scope.conn, scope.actor, scope.tenant_id, incident_id, body.body)


@router.post(
    "/{incident_id}/attachments", response_model=AttachmentRead, status_code=201,
    openapi_extra=attachments.UPLOAD_OPENAPI,
    responses={413: {"description": "photo over CIVICSENSE_PHOTO_MAX_BYTES, PDF over 10 MiB"},
               415: {"description": "not image/jpeg, image/png, image/webp or application/pdf"}},
)  # fmt: skip
def add_attachment(
    scope: Work, incident_id: int,
    upload: Annotated[AttachmentUpload, Depends(attachments.attachment_upload)],
) -> dict[str, Any]:  # fmt: skip
    """Attach a photo or a PDF document: the body is the file itself, with its Content-Type
    (and `?filename=`). A photo is re-encoded as a JPEG without its metadata (EXIF GPS...);
    a document must be a PDF. Attachments are never replaced or removed."""
    with _answers():
        incidents.find(scope.conn, scope.tenant_id, incident_id)
        return incidents.attach(
            scope.conn, scope.actor, scope.tenant_id, incident_id,
            filename=upload.stored_name(), file=upload.check(),
        )  # fmt: skip


@router.get(
    "/{incident_id}/attachments/{attachment_id}", response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "application/pdf": {}}}},
)  # fmt: skip
def get_attachment(scope: Read, incident_id: int, attachment_id: int) -> Response:
    """An attachment's bytes: a JPEG photo, or a PDF document (as a download)."""
    found = attachments.content_of(scope.conn, scope.tenant_id, incident_id, attachment_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no attachment {attachment_id} of incident {incident_id}"
        )
    return attachments.file_response(*found)
