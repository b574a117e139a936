"""Registering devices, one by one or from a CSV file.

The CSV columns are those of `CSV_COLUMNS`, for the API import and `civicsense devices
import` alike. `tags` holds `key=value` or bare `label` entries separated by `;` (quote the
cell in a semicolon-separated file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from pydantic import ValidationError

from core import crypto
from core.settings import Settings

from . import repository, tags
from .models import EDITABLE_FIELDS, DeviceCreate

CSV_REQUIRED = ("dev_eui", "model", "name")
CSV_OPTIONAL = ("join_eui", "app_key", "lat", "lon", "site", "bay", "tags")
CSV_COLUMNS = ",".join(CSV_REQUIRED) + "[," + ",".join(CSV_OPTIONAL) + "]"


class DeviceConflict(ValueError):
    """The DevEUI is live on another tenant's device."""


@dataclass(frozen=True)
class LineResult:
    """The outcome of one CSV line: created, updated, unchanged or error."""

    line: int
    dev_eui: str | None
    status: str
    detail: str = ""


def register(
    conn: psycopg.Connection, settings: Settings, *, tenant_id: int, device: DeviceCreate
) -> tuple[str, dict[str, Any]]:
    """Create the device, or update it when it is already this tenant's.

    Returns ("created" | "updated" | "unchanged", row). Only the fields given are
    changed (an empty CSV cell keeps what is stored); re-registering the same data
    changes nothing; a different AppKey replaces the stored one.
    """
    values = device.model_dump(include=set(EDITABLE_FIELDS) | {"dev_eui"}, exclude_unset=True)
    app_key = device.app_key.get_secret_value() if device.app_key is not None else None
    with conn.transaction():
        existing = repository.get_live(conn, device.dev_eui)
        if existing is None:
            if app_key is not None:
                values["app_key_encrypted"] = crypto.encrypt(settings, app_key)
            return "created", repository.insert(conn, tenant_id=tenant_id, values=values)
        if existing["tenant_id"] != tenant_id:
            raise DeviceConflict("DevEUI already registered by another tenant")
        changes = {k: v for k, v in values.items() if k in EDITABLE_FIELDS and existing[k] != v}
        if app_key is not None and _stored_app_key(conn, settings, existing) != app_key:
            changes["app_key_encrypted"] = crypto.encrypt(settings, app_key)
        if not changes:
            return "unchanged", existing
        repository.update(conn, existing["id"], changes)
        updated = repository.get_live(conn, device.dev_eui)
        assert updated is not None
        return "updated", updated


def _stored_app_key(
    conn: psycopg.Connection, settings: Settings, device: dict[str, Any]
) -> str | None:
    token = repository.app_key_encrypted(conn, device["id"]) if device["has_app_key"] else None
    return crypto.decrypt(settings, token) if token is not None else None


def _rows(text: str) -> tuple[list[str], csv.DictReader[str]]:
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample.splitlines()[0] if sample else "", ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ValueError(f"line 1: malformed CSV: {exc}") from None
    header = [(name or "").strip().lower() for name in (fieldnames or [])]
    reader.fieldnames = header
    return header, reader


def check_header(header: list[str]) -> None:
    """Raise ValueError naming missing or unknown columns."""
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
    problems = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s): {', '.join(unknown)}")
    if problems:
        raise ValueError("; ".join(problems) + f" (expected header: {CSV_COLUMNS})")


def import_csv(
    conn: psycopg.Connection, settings: Settings, *, tenant_id: int, data: bytes
) -> list[LineResult]:
    """Register every valid line; report each line. Invalid lines change nothing."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is not UTF-8 text: {exc}") from None
    header, reader = _rows(text)
    check_header(header)
    results = []
    seen: dict[str, int] = {}
    for line, row in _numbered(reader):
        values = {k: (v or "").strip() for k, v in row.items() if k and (v or "").strip()}
        if None in row:
            results.append(LineResult(line, values.get("dev_eui"), "error", "too many fields"))
            continue
        try:
            if "tags" in values:
                values["tags"] = tags.parse_cell(values["tags"])
            device = DeviceCreate.model_validate(values)
        except ValidationError as exc:
            results.append(LineResult(line, values.get("dev_eui"), "error", explain(exc)))
            continue
        except ValueError as exc:
            results.append(LineResult(line, values.get("dev_eui"), "error", f"tags: {exc}"))
            continue
        if device.dev_eui in seen:
            detail = f"DevEUI already on line {seen[device.dev_eui]}"
            results.append(LineResult(line, device.dev_eui, "error", detail))
            continue
        seen[device.dev_eui] = line
        try:
            status, _ = register(conn, settings, tenant_id=tenant_id, device=device)
        except (DeviceConflict, crypto.SecretKeyMissing, ValueError) as exc:
            results.append(LineResult(line, device.dev_eui, "error", str(exc)))
            continue
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            detail = f"refused by the database: {exc.diag.message_primary or exc}"
            results.append(LineResult(line, device.dev_eui, "error", detail))
            continue
        results.append(LineResult(line, device.dev_eui, status))
    return results


def _numbered(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs; a broken CSV becomes a ValueError naming the line."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"line {reader.line_num}: malformed CSV: {exc}") from None
        yield reader.line_num, row


def explain(exc: ValidationError) -> str:
    """A validation error as one line: `field: message; ...`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'line'}: {error['msg']}"
        for error in exc.errors()
    )
