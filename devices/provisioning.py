"""Provisioning registered devices in ChirpStack, by a scheduled job (and on demand), and
deleting decommissioned ones from it.

Every device still `registered` is created in its tenant's ChirpStack application with
its model's device profile and its tags (under civicsense's own: tenant, site, bay), then
given its AppKey; it becomes `provisioned`. A device
ChirpStack refuses keeps the error, shown with the device, and is tried again at the next
run; when ChirpStack is down the run stops and the rest waits for the next run. This is
an operator task across tenants: it uses the owner's connection (the privileged path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core import audit, crypto
from core.audit import Actor
from core.settings import Settings

from . import tags
from .chirpstack import ChirpStackClient, ChirpStackRefused, ChirpStackUnavailable

log = logging.getLogger("civicsense.devices.provisioning")
SYSTEM = Actor("system", "provisioning")

_PENDING = """
SELECT d.id, d.tenant_id, t.slug AS tenant, d.dev_eui, d.join_eui, d.name, d.model, d.site,
       d.bay, d.tags, d.app_key_encrypted
FROM devices d JOIN tenants t ON t.id = d.tenant_id
WHERE d.status = 'registered' AND d.id > %s
ORDER BY d.id
LIMIT %s
"""
_FAILED = """
UPDATE devices SET provisioning_error = %s, provisioning_attempts = provisioning_attempts + 1,
       updated_at = now()
WHERE id = %s
"""
_DONE = """
UPDATE devices SET status = 'provisioned', provisioned_at = now(), provisioning_error = NULL,
       provisioning_attempts = provisioning_attempts + 1, updated_at = now()
WHERE id = %s AND status = 'registered'
"""


_DECOMMISSIONED = """
SELECT d.id, d.tenant_id, d.dev_eui,
       EXISTS (SELECT FROM devices live WHERE live.dev_eui = d.dev_eui
               AND live.status <> 'decommissioned') AS registered_again
FROM devices d
WHERE d.status = 'decommissioned' AND d.provisioned_at IS NOT NULL
  AND d.deprovisioned_at IS NULL AND d.id > %s
ORDER BY d.id
LIMIT %s
"""


@dataclass
class Report:
    """What one run did."""

    skipped: str | None = None
    provisioned: int = 0
    deprovisioned: int = 0
    failed: int = 0
    unavailable: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # DevEUI → reason


def _problem(settings: Settings, device: dict[str, Any]) -> str | None:
    """Why the device cannot be provisioned with this configuration, if it cannot."""
    if device["tenant"] not in settings.chirpstack_applications:
        return f"no ChirpStack application configured for tenant {device['tenant']!r}"
    if device["model"] not in settings.chirpstack_device_profiles:
        return f"no ChirpStack device profile configured for model {device['model']!r}"
    if device["app_key_encrypted"] is None:
        return "no AppKey: register the device's AppKey to provision it (OTAA)"
    return None


def _provision_one(client: ChirpStackClient, settings: Settings, device: dict[str, Any]) -> None:
    reserved = {"civicsense_tenant": device["tenant"], "site": device["site"], "bay": device["bay"]}
    client.create_or_update(
        dev_eui=device["dev_eui"], name=device["name"],
        application_id=settings.chirpstack_applications[device["tenant"]],
        device_profile_id=settings.chirpstack_device_profiles[device["model"]],
        join_eui=device["join_eui"], tags=tags.for_chirpstack(device["tags"], reserved),
    )  # fmt: skip
    app_key = crypto.decrypt(settings, bytes(device["app_key_encrypted"]))
    client.set_keys(dev_eui=device["dev_eui"], app_key=app_key)


def provision_pending(
    settings: Settings,
    *,
    client_factory: Callable[[Settings], ChirpStackClient] = ChirpStackClient,
    batch: int = 500,
) -> Report:
    """Delete decommissioned devices from ChirpStack, then provision every `registered`
    one; commits device by device."""
    if not settings.chirpstack_api_url:
        return Report(skipped="CIVICSENSE_CHIRPSTACK_API_URL is not set: provisioning skipped")
    report = Report()
    client = client_factory(settings)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            for query, step in ((_DECOMMISSIONED, _remove_one), (_PENDING, _run_one)):
                last_id = 0
                while report.unavailable is None:
                    with conn.cursor(row_factory=dict_row) as cur:
                        devices = cur.execute(query, (last_id, batch)).fetchall()
                    if not devices:
                        break
                    for device in devices:
                        last_id = device["id"]
                        step(conn, client, settings, device, report)
                        if report.unavailable:
                            break
    finally:
        client.close()
    if report.unavailable:
        log.warning("ChirpStack unavailable, provisioning stopped: %s", report.unavailable)
    return report


def _remove_one(
    conn: psycopg.Connection,
    client: ChirpStackClient,
    _settings: Settings,
    device: dict[str, Any],
    report: Report,
) -> None:
    """Delete a decommissioned device, unless its DevEUI was registered again since (then
    ChirpStack's entry belongs to the new registration)."""
    if not device["registered_again"]:
        try:
            client.delete(device["dev_eui"])
        except ChirpStackRefused as exc:
            report.failed += 1
            report.errors[device["dev_eui"]] = f"ChirpStack refused the deletion: {exc}"
            return
        except ChirpStackUnavailable as exc:
            report.unavailable = str(exc)
            return
    with conn.transaction():
        conn.execute("UPDATE devices SET deprovisioned_at = now() WHERE id = %s", (device["id"],))
        audit.record(
            conn, SYSTEM, "device.deprovision", target=device["dev_eui"],
            tenant_id=device["tenant_id"],
        )  # fmt: skip
    report.deprovisioned += 1


def _run_one(
    conn: psycopg.Connection,
    client: ChirpStackClient,
    settings: Settings,
    device: dict[str, Any],
    report: Report,
) -> None:
    error = _problem(settings, device)
    if error is None:
        try:
            _provision_one(client, settings, device)
        except ChirpStackRefused as exc:
            error = f"ChirpStack refused the device: {exc}"
        except ChirpStackUnavailable as exc:
            report.unavailable = str(exc)
            error = f"ChirpStack unavailable, will retry: {exc}"
    with conn.transaction():
        if error is None:
            conn.execute(_DONE, (device["id"],))
            audit.record(
                conn, SYSTEM, "device.provision", target=device["dev_eui"],
                tenant_id=device["tenant_id"],
            )  # fmt: skip
            report.provisioned += 1
        else:
            conn.execute(_FAILED, (error, device["id"]))
            report.failed += 1
            report.errors[device["dev_eui"]] = error


def run_job(settings: Settings) -> None:
    """Scheduled job: provision what is pending; say so when provisioning is off."""
    report = provision_pending(settings)
    if report.skipped:
        log.debug(report.skipped)
    elif report.provisioned or report.deprovisioned or report.failed:
        log.info(
            "provisioning: %d provisioned, %d deleted, %d failed",
            report.provisioned, report.deprovisioned, report.failed,
        )  # fmt: skip
