"""Quote, order and business-volume routes under `/catalog`.

Who works through which connection:

- a town's buyer (`catalog:order`) through `scoped`: row-level security confines it to
  its town, so another town's quote or order is a 404;
- the town's users who deploy an order (`catalog:read`, held by every role of the town,
  technicians included) read its onboarding checklist through `scoped` as well;
- the operator (`catalog:manage`, an operator-level account) through the privileged
  connection, across towns, filtering explicitly: every town, or the one named by the
  `X-Tenant` header. It answers quotes, moves orders and reports. An operator composing
  a quote *for* a town acts as that town's buyer (`X-Tenant`, like any buyer route).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status

from core import tenants
from core.audit import Actor
from core.identity.principal import TENANT_HEADER, Caller, Principal, Scope, check, scoped

from . import business_report, deployment, orders, pdf, quotes
from .commerce_models import (
    OrderCreate,
    OrderRead,
    OrderStatus,
    OrderStatusChange,
    OrderSummary,
    QuoteAnswer,
    QuoteCreate,
    QuoteDecision,
    QuoteRead,
    QuoteStatus,
    QuoteSummary,
    QuoteUpdate,
)
from .documents import CommerceError

router = APIRouter(prefix="/catalog", tags=["catalog: quotes and orders"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
_PDF: dict[int | str, dict[str, Any]] = {200: {"content": {"application/pdf": {}}}}
_FILES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/pdf": {}}}
}


@dataclass(frozen=True)
class Desk:
    """A connection to work on quotes and orders, and whose they are: `tenant_id` None
    is every town (the operator without X-Tenant)."""

    conn: psycopg.Connection
    tenant_id: int | None
    actor: Actor


def _is_operator(principal: Principal) -> bool:
    return principal.tenant_id is None and "catalog:manage" in principal.permissions


@contextlib.contextmanager
def _operator_desk(request: Request, principal: Principal) -> Iterator[Desk]:
    """The privileged connection, narrowed to the X-Tenant town when one is named."""
    with request.app.state.privileged_pool.connection() as conn:
        chosen = request.headers.get(TENANT_HEADER)
        try:
            tenant_id = tenants.id_for_slug(conn, chosen) if chosen else None
        except tenants.TenantNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant {chosen!r}") from None
        yield Desk(conn, tenant_id, principal.actor())


def _reader(request: Request, principal: Caller) -> Iterator[Desk]:
    """Dependency: the operator across towns, or a buyer in its town."""
    if _is_operator(principal):
        with _operator_desk(request, principal) as desk:
            yield desk
        return
    town_scope = contextlib.contextmanager(scoped("catalog:order"))
    with town_scope(request, principal) as scope:
        yield Desk(scope.conn, scope.tenant_id, scope.actor)


def _operator(request: Request, principal: Caller) -> Iterator[Desk]:
    """Dependency: the operator only (catalog:manage on an operator-level account)."""
    check(principal, ("catalog:manage",))
    if principal.tenant_id is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "operator accounts only")
    with _operator_desk(request, principal) as desk:
        yield desk


Buyer = Annotated[Scope, Depends(scoped("catalog:order"))]
TownReader = Annotated[Scope, Depends(scoped("catalog:read"))]
Reader = Annotated[Desk, Depends(_reader)]
Operator = Annotated[Desk, Depends(_operator)]


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """The services' refusals as HTTP answers (404, 409, 422 with the reason)."""
    try:
        yield
    except CommerceError as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _file(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- quotes ------------------------------------------------------------------------------


@router.post("/quotes", response_model=QuoteRead, status_code=status.HTTP_201_CREATED)
def create_quote(scope: Buyer, body: QuoteCreate) -> dict[str, Any]:
    """A draft quote of the town from price lines of *available* solutions, priced on
    their current version (prices are copied into the quote and stay)."""
    with _answers():
        return quotes.create(scope.conn, scope.actor, tenant_id=scope.tenant_id, data=body)


@router.get("/quotes", response_model=list[QuoteSummary])
def list_quotes(
    desk: Reader,
    quote_status: Annotated[QuoteStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """The town's quotes; the operator sees every town's (or one's, with X-Tenant)."""
    return quotes.get_all(desk.conn, tenant_id=desk.tenant_id, status=quote_status, limit=limit)


@router.get("/quotes/{quote_id}", response_model=QuoteRead)
def get_quote(desk: Reader, quote_id: Id) -> dict[str, Any]:
    """A quote with its lines, VAT per rate, totals and history."""
    with _answers():
        return quotes.get(desk.conn, quote_id, tenant_id=desk.tenant_id)


@router.patch("/quotes/{quote_id}", response_model=QuoteRead)
def update_quote(scope: Buyer, quote_id: Id, body: QuoteUpdate) -> dict[str, Any]:
    """Change a draft: its reference, or all its lines (lines kept keep their price)."""
    with _answers():
        return quotes.update(
            scope.conn, scope.actor, tenant_id=scope.tenant_id, quote_id=quote_id, data=body
        )


@router.post("/quotes/{quote_id}/submit", response_model=QuoteRead)
def submit_quote(scope: Buyer, quote_id: Id) -> dict[str, Any]:
    """Send the draft to the operator, who accepts, amends or refuses it."""
    with _answers():
        return quotes.submit(scope.conn, scope.actor, tenant_id=scope.tenant_id, quote_id=quote_id)


@router.post("/quotes/{quote_id}/answer", response_model=QuoteRead)
def answer_quote(desk: Operator, quote_id: Id, body: QuoteAnswer) -> dict[str, Any]:
    """The operator's answer to a submitted quote: accept, amend (every line, with a
    discount if any, and a reason) or refuse (with a reason)."""
    with _answers():
        return quotes.answer(
            desk.conn, desk.actor, tenant_id=desk.tenant_id, quote_id=quote_id, data=body
        )


@router.post("/quotes/{quote_id}/accept", response_model=QuoteRead)
def accept_quote(scope: Buyer, quote_id: Id, body: QuoteDecision | None = None) -> dict[str, Any]:
    """The buyer accepts the operator's amendment."""
    with _answers():
        return quotes.decide(
            scope.conn,
            scope.actor,
            tenant_id=scope.tenant_id,
            quote_id=quote_id,
            accept=True,
            reason=body.reason if body else None,
        )


@router.post("/quotes/{quote_id}/refuse", response_model=QuoteRead)
def refuse_quote(scope: Buyer, quote_id: Id, body: QuoteDecision | None = None) -> dict[str, Any]:
    """The buyer refuses the operator's amendment."""
    with _answers():
        return quotes.decide(
            scope.conn,
            scope.actor,
            tenant_id=scope.tenant_id,
            quote_id=quote_id,
            accept=False,
            reason=body.reason if body else None,
        )


@router.post(
    "/quotes/{quote_id}/order", response_model=OrderRead, status_code=status.HTTP_201_CREATED
)
def order_quote(scope: Buyer, quote_id: Id, body: OrderCreate) -> dict[str, Any]:
    """Order an accepted quote with the town's purchase-order number. The town's SIRET
    must be set: the order keeps it as it is today."""
    with _answers():
        return orders.create(
            scope.conn, scope.actor, tenant_id=scope.tenant_id, quote_id=quote_id, data=body
        )


@router.get("/quotes/{quote_id}/pdf", response_class=Response, responses=_PDF)
def quote_pdf(desk: Reader, quote_id: Id) -> Response:
    """The quote as a PDF (French)."""
    with _answers():
        quote = quotes.get(desk.conn, quote_id, tenant_id=desk.tenant_id)
    return _file(pdf.quote_pdf(quote), "application/pdf", f"{quote['number']}.pdf")


# --- orders ------------------------------------------------------------------------------


@router.get("/orders", response_model=list[OrderSummary])
def list_orders(
    desk: Reader,
    order_status: Annotated[OrderStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """The town's orders; the operator sees every town's (or one's, with X-Tenant)."""
    return orders.get_all(desk.conn, tenant_id=desk.tenant_id, status=order_status, limit=limit)


@router.get("/orders/{order_id}", response_model=OrderRead)
def get_order(desk: Reader, order_id: Id) -> dict[str, Any]:
    """An order with its quote's lines, VAT per rate and totals."""
    with _answers():
        return orders.get(desk.conn, order_id, tenant_id=desk.tenant_id)


@router.get("/orders/{order_id}/checklist", response_model=deployment.Checklist)
def order_checklist(scope: TownReader, order_id: Id) -> deployment.Checklist:
    """The order's onboarding checklist: how many devices of which model to install, and
    how many of them technicians have registered since the order (see
    `catalog.deployment.checklist` for how devices are counted across orders)."""
    with _answers():
        return deployment.checklist(scope.conn, tenant_id=scope.tenant_id, order_id=order_id)


@router.post("/orders/{order_id}/status", response_model=OrderRead)
def move_order(desk: Operator, order_id: Id, body: OrderStatusChange) -> dict[str, Any]:
    """The operator records the next step (delivered, invoiced, paid) and its date;
    a skipped or repeated step is a 409."""
    with _answers():
        return orders.move(
            desk.conn, desk.actor, tenant_id=desk.tenant_id, order_id=order_id, data=body
        )


@router.get("/orders/{order_id}/pdf", response_class=Response, responses=_PDF)
def order_pdf(desk: Reader, order_id: Id) -> Response:
    """The order as a PDF (French)."""
    with _answers():
        order = orders.get(desk.conn, order_id, tenant_id=desk.tenant_id)
    return _file(pdf.order_pdf(order), "application/pdf", f"{order['number']}.pdf")


# --- reporting ---------------------------------------------------------------------------


@router.get("/reports/business-volume", responses=_FILES)
def business_volume(
    desk: Operator,
    start: Annotated[date | None, Query(alias="from", description="first day (YYYY-MM-DD)")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day, included")] = None,
    period: business_report.Period = "month",
    format: Literal["json", "csv", "pdf"] = "json",
) -> Any:
    """Business volume of the orders dated in the range (default: the last complete
    half-year): totals excl./incl. tax in total, per period and per beneficiary (SIRET),
    every order, and the distribution over price lines. CSV: UTF-8 with BOM, `;`,
    decimal commas."""
    first, last = business_report.last_half_year(datetime.now(UTC).date())
    first, last = start or first, end or last
    if first > last:
        raise HTTPException(422, "`from` is after `to`")
    report = business_report.business_volume(
        desk.conn, start=first, end=last, period=period, tenant_id=desk.tenant_id
    )
    if format == "json":
        return report.as_json()
    stem = f"volume-affaires-{first.isoformat()}-{last.isoformat()}"
    if format == "csv":
        return _file(business_report.to_csv(report), "text/csv; charset=utf-8", f"{stem}.csv")
    return _file(business_report.to_pdf(report), "application/pdf", f"{stem}.pdf")
