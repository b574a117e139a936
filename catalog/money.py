"""Money on quotes and orders: line amounts, VAT per rate and totals, in exact decimals.

The rounding rule (French invoicing practice, what an accountant re-computes by hand):

1. **Each line** is rounded once, to the cent, half-up:
   ``amount = round(quantity × unit price × (100 − discount %) / 100)``.
   The discount is the operator's, per line, so a line's VAT rate stays unambiguous.
2. **VAT per rate** is computed on the sum of the rounded line amounts at that rate,
   rounded to the cent half-up — not line by line, which would drift by a cent per line.
3. **Totals**: excl. tax = sum of the line amounts; VAT = sum of the per-rate VAT;
   incl. tax = excl. tax + VAT (so the three printed totals always add up).

Half-up, not the banker's rounding that Python's `round` uses: 3 × 0.335 € = 1.005 € is
1.01 €. Floats never enter: 1.005 as a float is 1.00499999..., which rounds to 1.00.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
NBSP = "\u00a0"  # French typography: between thousands, before € and %


def to_cents(value: Decimal) -> Decimal:
    """`value` rounded to the cent, half-up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def line_amount(
    quantity: Decimal, unit_price: Decimal, discount_percent: Decimal = ZERO
) -> Decimal:
    """A line's amount excl. tax: rule 1 of the module docstring."""
    # quantity (3 decimals) × price (2) × (100 − discount) (2) is exact far below 50 digits
    with decimal.localcontext(prec=50):
        exact = quantity * unit_price * (HUNDRED - discount_percent) / HUNDRED
        return to_cents(exact)


@dataclass(frozen=True)
class VatShare:
    """The lines at one VAT rate: their base (excl. tax) and the VAT on it."""

    rate: Decimal
    base: Decimal
    vat: Decimal


@dataclass(frozen=True)
class Totals:
    """A document's totals and its VAT breakdown, by increasing rate."""

    excl: Decimal
    vat: Decimal
    incl: Decimal
    by_rate: tuple[VatShare, ...]


def totals(lines: Iterable[tuple[Decimal, Decimal]]) -> Totals:
    """Totals of `(amount excl. tax, VAT rate %)` lines: rules 2 and 3 of the module
    docstring. Amounts must be rounded line amounts already."""
    bases: dict[Decimal, Decimal] = {}
    for amount, rate in lines:
        key = rate.quantize(CENT)  # 20, 20.0 and 20.00 are one rate
        bases[key] = bases.get(key, ZERO) + amount
    shares = tuple(
        VatShare(rate, base, to_cents(base * rate / HUNDRED))
        for rate, base in sorted(bases.items())
    )
    excl = sum((share.base for share in shares), ZERO)
    vat = sum((share.vat for share in shares), ZERO)
    return Totals(excl, vat, excl + vat, shares)


def french_euros(amount: Decimal) -> str:
    """`1 234,56 €` as French documents print amounts (no-break spaces)."""
    grouped = f"{to_cents(amount):,.2f}"  # 1,234.56
    return grouped.replace(",", NBSP).replace(".", ",") + NBSP + "€"


def french_rate(rate: Decimal) -> str:
    """`5,5 %`, `20 %`: a VAT rate as printed."""
    text = f"{rate.normalize():f}".replace(".", ",")
    return text + NBSP + "%"
