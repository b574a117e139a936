"""Report routes: the daily reconciliation (JSON, CSV, PDF), zones without payments,
occupancy per hour, and who receives the reports by e-mail. Town administrators only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, status

from core.identity.principal import Scope, scoped

from . import report_mail, reports
from .models import ZONE_CODE
from .report_mail import Recipient

router = APIRouter(tags=["parking reports"])

Manage = Annotated[Scope, Depends(scoped("parking:manage"))]
Day = Annotated[
    date | None, Query(description="local day (YYYY-MM-DD); default: yesterday, tenant's time")
]
_FILES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/pdf": {}}}
}


@router.get("/reports/reconciliation", responses=_FILES)
def reconciliation(
    scope: Manage, day: Day = None, format: Literal["json", "csv", "pdf"] = "json"
) -> Any:
    """Sessions that ended on `day` (their stop, or for a session never stopped its paid
    end), per source, operator and zone: count, minutes, public fee, services, totals.
    CSV: UTF-8 with BOM, `;` and decimal commas, for French spreadsheets."""
    town, tz = reports.tenant_info(scope.conn, scope.tenant_id)
    day = day or reports.yesterday(tz)
    report = reports.reconciliation(scope.conn, day, tz)
    if format == "json":
        return report.as_json()
    stem = f"rapprochement-{day.isoformat()}"
    if format == "csv":
        content, media_type = reports.to_csv(report), "text/csv; charset=utf-8"
    else:
        content, media_type = reports.to_pdf(report, town), "application/pdf"
    disposition = f'attachment; filename="{stem}.{format}"'
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": disposition})  # fmt: skip


@router.get("/reports/stale-zones")
def stale_zones(scope: Manage) -> list[dict[str, Any]]:
    """Active zones without a payment session started for over a day (`warning`) or ten
    days (`red`); `last_payment` is null for a zone never paid in (idle since created)."""
    return reports.stale_zones(scope.conn, datetime.now(UTC))


@router.get("/reports/occupancy")
def occupancy(
    scope: Manage,
    day: Day = None,
    zone: Annotated[str | None, Query(pattern=ZONE_CODE)] = None,
) -> list[dict[str, Any]]:
    """Per zone and local hour: occupancy rate, arrivals, mean dwell time, compliance
    (paid / regulated occupied time, an approximation) and estimated unpaid revenue."""
    _, tz = reports.tenant_info(scope.conn, scope.tenant_id)
    result = reports.occupancy_by_hour(scope.conn, zone, day or reports.yesterday(tz), tz)
    if zone is not None and not result:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active zone {zone!r}")
    return result


@router.get("/reports/recipients", response_model=list[Recipient])
def get_recipients(scope: Manage) -> list[Recipient]:
    """Who receives the daily reconciliation by e-mail."""
    return report_mail.recipients(scope.conn)


@router.put("/reports/recipients", response_model=list[Recipient])
def put_recipients(
    scope: Manage, body: Annotated[list[Recipient], Body(max_length=50)]
) -> list[Recipient]:
    """Replace the recipients (an empty list stops the e-mails)."""
    return report_mail.replace_recipients(scope.conn, scope.actor, scope.tenant_id, body)
