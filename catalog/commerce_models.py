"""Pydantic models of quotes and orders: what buyers and the operator send, what they read.

Amounts are `Decimal` and serialised as strings in JSON (never floats)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

QuoteStatus = Literal["draft", "submitted", "accepted", "amended", "refused"]
OrderStatus = Literal["ordered", "delivered", "invoiced", "paid"]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
Money = Annotated[Decimal, Field(description="euros, two decimals")]
SLUG = r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$"
CODE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_LINES = 200


class _Strict(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class LineRequest(_Strict):
    """A price line of a solution's current version, with the quantity wanted."""

    solution: str = Field(pattern=SLUG, description="the solution's slug")
    code: str = Field(pattern=CODE, description="the price line's code in that solution")
    quantity: Quantity


class AmendedLine(LineRequest):
    """A line as the operator amends it: a discount may apply."""

    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)


def _distinct(lines: list[LineRequest] | list[AmendedLine] | None) -> None:
    keys = [(line.solution, line.code) for line in lines or ()]
    if len(keys) != len(set(keys)):
        raise ValueError("each (solution, code) appears once: add the quantities up")


class QuoteCreate(_Strict):
    """A new quote (a draft), from price lines of available solutions."""

    reference: str = Field("", max_length=200, description="the town's own reference")
    lines: list[LineRequest] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _lines_are_distinct(self) -> QuoteCreate:
        _distinct(self.lines)
        return self


class QuoteUpdate(_Strict):
    """Changes to a draft; `lines` replaces every line (lines already on the quote keep
    the price they were made on)."""

    reference: str | None = Field(None, max_length=200)
    lines: list[LineRequest] | None = Field(None, min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _lines_are_distinct(self) -> QuoteUpdate:
        _distinct(self.lines)
        return self


class QuoteAnswer(_Strict):
    """The operator's answer to a submitted quote."""

    decision: Literal["accept", "amend", "refuse"]
    reason: str | None = Field(None, min_length=1, max_length=2000)
    lines: list[AmendedLine] | None = Field(
        None, min_length=1, max_length=MAX_LINES, description="amend only: every line"
    )

    @model_validator(mode="after")
    def _consistent(self) -> QuoteAnswer:
        if self.decision != "accept" and self.reason is None:
            raise ValueError(f"a reason is required to {self.decision}")
        if (self.decision == "amend") != (self.lines is not None):
            raise ValueError("lines are given to amend, and only then")
        _distinct(self.lines)
        return self


class QuoteDecision(_Strict):
    """The buyer's decision on an amended quote."""

    reason: Reason | None = None


class QuoteLineRead(BaseModel):
    """A quote line, with the copy of what it was priced on."""

    position: int
    solution_id: int
    solution_version: int
    solution_slug: str
    solution_name: str
    price_line_id: int
    code: str
    label: str
    kind: str
    unit: str
    device_model: str | None
    unit_price: Money
    vat_rate: Decimal
    quantity: Decimal
    discount_percent: Decimal
    amount_excl: Money


class VatLine(BaseModel):
    """The lines at one VAT rate."""

    rate: Decimal
    base: Money
    vat: Money


class QuoteEventRead(BaseModel):
    """A step of the quote's history."""

    status: str
    reason: str | None
    actor: str
    at: datetime


class QuoteSummary(BaseModel):
    """A quote in a list."""

    id: int
    number: str
    tenant: str
    town: str
    status: QuoteStatus
    reference: str
    total_excl: Money
    total_vat: Money
    total_incl: Money
    order_id: int | None
    created_at: datetime
    updated_at: datetime


class QuoteRead(QuoteSummary):
    """A quote with its lines, VAT breakdown and history."""

    siret: str | None
    lines: list[QuoteLineRead]
    vat: list[VatLine]
    events: list[QuoteEventRead]


class OrderCreate(_Strict):
    """The buyer's confirmation of an accepted quote."""

    po_number: str = Field(min_length=1, max_length=100, description="purchase-order number")
    ordered_on: date | None = Field(None, description="default: today, town's time")


class OrderStatusChange(_Strict):
    """The operator moves an order one step: ordered → delivered → invoiced → paid."""

    status: Literal["delivered", "invoiced", "paid"]
    on: date | None = Field(None, description="the step's date; default: today")


class OrderSummary(BaseModel):
    """An order in a list."""

    id: int
    number: str
    tenant: str
    quote_id: int
    quote_number: str
    po_number: str
    status: OrderStatus
    ordered_on: date
    delivered_on: date | None
    invoiced_on: date | None
    paid_on: date | None
    beneficiary_name: str
    beneficiary_siret: str
    total_excl: Money
    total_vat: Money
    total_incl: Money
    created_at: datetime


class OrderRead(OrderSummary):
    """An order with the lines and VAT breakdown of its quote."""

    lines: list[QuoteLineRead]
    vat: list[VatLine]
