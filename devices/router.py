"""Device routes: onboarding (one, CSV, edit, decommission), the registry with health,
and readings. Every route works through the caller's tenant (row-level security)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from core import audit, readings
from core.identity.principal import Scope, scoped
from core.mqtt import MqttUnavailable, publish_once

from . import downlinks, repository, service, tags
from .dependencies import DevEui, Read, Write, live_device
from .models import EDITABLE_FIELDS, DeviceCreate, DeviceDetail, DeviceRead, DeviceUpdate
from .qrcode import QrCodeError, parse_tr005

router = APIRouter(prefix="/devices", tags=["devices"])

MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_LINES = 5000
STATUSES = "^(registered|provisioned|active|silent|decommissioned)$"


class ReadingOut(BaseModel):
    """One decoded value."""

    time: datetime
    quantity: str
    value: float


class QrScan(BaseModel):
    """The text a QR-code reader got from a device label."""

    code: str = Field(min_length=1, max_length=4296)


class QrRegistration(BaseModel):
    """What a TR005 label says, ready to complete (model, name, AppKey) and register."""

    dev_eui: str
    join_eui: str
    profile_id: str = Field(description="LoRa Alliance VendorID + the vendor's profile id")
    vendor_id: str
    serial_number: str | None
    has_owner_token: bool
    format: str = Field(description="tr005, or a draft: tr005draft2 / tr005draft3")


class ImportLine(BaseModel):
    """The outcome of one line of an import."""

    line: int
    dev_eui: str | None
    status: str
    detail: str = ""


class ImportReport(BaseModel):
    """Counts by outcome, and every line that was not registered with its reason."""

    counts: dict[str, int]
    errors: list[ImportLine]


def _register(scope: Scope, device: DeviceCreate) -> tuple[str, dict[str, Any]]:
    try:
        return service.register(
            scope.conn, scope.settings, tenant_id=scope.tenant_id, device=device
        )
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"DevEUI {device.dev_eui} is already registered") from None


@router.post("", response_model=DeviceRead, status_code=status.HTTP_201_CREATED)
def create_device(scope: Write, body: DeviceCreate, response: Response) -> dict[str, Any]:
    """Register a device (the same DevEUI again updates it: 200)."""
    outcome, row = _register(scope, body)
    if outcome != "created":
        response.status_code = status.HTTP_200_OK
    audit.record(scope.conn, scope.actor, f"device.{outcome}", target=body.dev_eui)
    return row


@router.post("/import", response_model=ImportReport)
def import_devices(
    scope: Write,
    body: Annotated[bytes, Body(media_type="text/csv", description=service.CSV_COLUMNS)],
) -> ImportReport:
    """Register the devices of a CSV file (the columns of `civicsense devices import`, at
    most 5,000 lines). Valid lines are kept, invalid ones reported; importing the same file
    again changes nothing. Tags: `key=value` or `label` entries separated by `;`."""
    if len(body) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    if body.count(b"\n") > MAX_IMPORT_LINES + 1:
        raise HTTPException(413, f"the file has more than {MAX_IMPORT_LINES} lines")
    try:
        results = service.import_csv(
            scope.conn, scope.settings, tenant_id=scope.tenant_id, data=body
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    audit.record(scope.conn, scope.actor, "device.import", details=counts)
    errors = [ImportLine(**vars(r)) for r in results if r.status == "error"]
    return ImportReport(counts=counts, errors=errors)


@router.post("/qr", response_model=QrRegistration)
def read_qr_code(_scope: Write, body: QrScan) -> QrRegistration:
    """Read a LoRaWAN device QR code (LoRa Alliance TR005, `LW:D0:...`) into a prefilled
    registration; the checksum is verified. Nothing is stored."""
    try:
        code = parse_tr005(body.code)
    except QrCodeError as exc:
        raise HTTPException(422, str(exc)) from None
    return QrRegistration(
        dev_eui=code.dev_eui, join_eui=code.join_eui, profile_id=code.profile_id,
        vendor_id=code.vendor_id, serial_number=code.serial_number,
        has_owner_token=code.owner_token is not None, format=code.variant,
    )  # fmt: skip


@router.get("", response_model=list[DeviceRead])
def list_devices(
    scope: Read,
    model: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[str | None, Query(alias="status", pattern=STATUSES)] = None,
    site: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    silent_since: Annotated[
        AwareDatetime | None, Query(description="silent devices not heard from since then")
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(max_length=tags.MAX_TAGS, description="`key` or `key=value`; repeat: all of them"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """The tenant's devices, by site and name; decommissioned ones with status=decommissioned."""
    try:
        wanted = [tags.parse_filter(text) for text in tag or ()]
    except ValueError as exc:
        raise HTTPException(422, f"tag filter: {exc}") from None
    return repository.get_all(
        scope.conn, model=model, status=status_, site=site, silent_since=silent_since,
        tags=wanted, limit=limit, offset=offset,
    )  # fmt: skip


@router.get("/{dev_eui}", response_model=DeviceDetail)
def get_device(scope: Read, dev_eui: DevEui) -> dict[str, Any]:
    """One device with its health: last seen, battery, signal, gateways."""
    device = live_device(scope.conn, dev_eui)
    return {**device, "health": repository.health(scope.conn, device["id"])}


@router.patch("/{dev_eui}", response_model=DeviceRead)
def update_device(scope: Write, dev_eui: DevEui, body: DeviceUpdate) -> dict[str, Any]:
    """Edit a device: place, name, model, JoinEUI, or a new AppKey."""
    device = live_device(scope.conn, dev_eui)
    current = {k: device[k] for k in EDITABLE_FIELDS if device[k] is not None}
    try:
        merged = DeviceCreate.model_validate(
            {**current, **body.model_dump(exclude_unset=True), "dev_eui": dev_eui}
        )
    except ValidationError as exc:
        raise HTTPException(422, service.explain(exc)) from None
    _, row = _register(scope, merged)
    changed = sorted(body.model_dump(exclude_unset=True, exclude={"app_key"}))
    details = {"fields": changed + (["app_key"] if body.app_key is not None else [])}
    audit.record(scope.conn, scope.actor, "device.update", target=dev_eui, details=details)
    return row


@router.delete("/{dev_eui}", status_code=status.HTTP_204_NO_CONTENT)
def decommission_device(scope: Write, dev_eui: DevEui) -> Response:
    """Decommission a device: it stops counting, its history stays, its DevEUI is free."""
    device = live_device(scope.conn, dev_eui)
    repository.decommission(scope.conn, device["id"])
    audit.record(scope.conn, scope.actor, "device.decommission", target=dev_eui)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{dev_eui}/readings", response_model=list[ReadingOut])
def device_readings(
    scope: Annotated[Scope, Depends(scoped("readings:read"))],
    dev_eui: DevEui,
    quantity: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> list[dict[str, object]]:
    """Readings of a device of the tenant, newest first."""
    device = live_device(scope.conn, dev_eui)
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    return readings.for_device(
        scope.conn, device_id=device["id"], quantity=quantity, since=since, until=until,
        limit=limit,
    )  # fmt: skip


@router.post(
    "/{dev_eui}/downlinks", response_model=downlinks.DownlinkRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses={503: {"description": "the broker did not take it: recorded as failed"}},
)  # fmt: skip
def send_downlink(
    scope: Write, dev_eui: DevEui, body: downlinks.DownlinkCreate
) -> dict[str, Any] | JSONResponse:
    """Queue a downlink in ChirpStack (MQTT `command/down`); its status follows ChirpStack's
    txack (sent) and ack (acknowledged / nacked) events."""
    device = live_device(scope.conn, dev_eui)
    slug = scope.conn.execute("SELECT slug FROM tenants").fetchone()
    application = scope.settings.chirpstack_applications.get(slug[0] if slug else "")
    if application is None:
        raise HTTPException(409, "no ChirpStack application is configured for this tenant")
    if not scope.settings.mqtt_url:
        raise HTTPException(503, "no MQTT broker is configured (CIVICSENSE_MQTT_URL)")
    row = downlinks.insert(
        scope.conn, tenant_id=scope.tenant_id, device=device, request=body,
        created_by=scope.actor.label,
    )  # fmt: skip
    audit.record(
        scope.conn, scope.actor, "device.downlink", target=dev_eui,
        details={"id": str(row["id"]), "f_port": body.f_port, "confirmed": body.confirmed},
    )  # fmt: skip
    scope.commit()  # before publishing: ChirpStack's txack may come back at once
    try:
        publish_once(
            scope.settings.mqtt_url, downlinks.command_topic(application, dev_eui),
            downlinks.command(row),
        )  # fmt: skip
    except MqttUnavailable as exc:
        failed = downlinks.failed(scope.conn, row["id"], str(exc))
        body_out = downlinks.DownlinkRead.model_validate(failed).model_dump(mode="json")
        return JSONResponse({"detail": f"not queued: {exc}", "downlink": body_out}, 503)
    return row


@router.get("/{dev_eui}/downlinks", response_model=list[downlinks.DownlinkRead])
def list_downlinks(
    scope: Read, dev_eui: DevEui, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    """A device's downlinks and their status, newest first."""
    return downlinks.for_device(scope.conn, live_device(scope.conn, dev_eui)["id"], limit)
