"""Money to the cent: line rounding, VAT per rate, totals, checked against an independent
computation in integer thousandths of cents."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from catalog import money

D = Decimal


def _scaled(value: str, places: int) -> int:
    """A non-negative decimal string as an integer count of 10^-places (exactly)."""
    whole, _, frac = value.partition(".")
    assert len(frac) <= places, value
    return int(whole) * 10**places + int(frac.ljust(places, "0") or "0")


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def _reference(lines: list[tuple[str, str, str, str]]) -> tuple[int, dict[str, int], int]:
    """Integer-only totals of (quantity, unit price, discount %, VAT rate) lines, in cents:
    excl. tax, VAT per rate, incl. tax. Written apart from catalog.money on purpose."""
    bases: dict[str, int] = {}
    for quantity, price, discount, rate in lines:
        # thousandths of a unit × cents × hundredths of a percent of what is left
        q, p, kept = _scaled(quantity, 3), _scaled(price, 2), 10000 - _scaled(discount, 2)
        amount = _half_up(q * p * kept, 1000 * 10000)
        bases[rate] = bases.get(rate, 0) + amount
    vat = {rate: _half_up(base * _scaled(rate, 1), 100 * 10) for rate, base in bases.items()}
    excl = sum(bases.values())
    return excl, vat, excl + sum(vat.values())


def _as_cents(amount: Decimal) -> int:
    return int(amount * 100)


def test_a_half_cent_rounds_up_not_to_even() -> None:
    assert money.line_amount(D("0.335"), D("3.00")) == D("1.01")  # 1.005: a float gives 1.00
    assert money.line_amount(D("0.125"), D("1.00")) == D("0.13")  # banker's would give 0.12
    assert money.line_amount(D("2.5"), D("0.01")) == D("0.03")
    assert money.line_amount(D("0.001"), D("4.99")) == D("0.00")


def test_discount_applies_before_the_single_rounding() -> None:
    # 7 × 13.33 = 93.31; less 15 % = 79.3135 → 79.31 (not 93.31 - 14.00)
    assert money.line_amount(D("7"), D("13.33"), D("15")) == D("79.31")
    assert money.line_amount(D("3"), D("10.00"), D("100")) == D("0.00")


def test_vat_is_computed_per_rate_on_the_sum_not_per_line() -> None:
    # ten lines of 0.05 € at 5.5 %: per line 0.00275 → 0.00 each, on the sum 0.50 → 0.03
    totals = money.totals([(D("0.05"), D("5.5"))] * 10)
    assert totals.by_rate == (money.VatShare(D("5.50"), D("0.50"), D("0.03")),)
    assert (totals.excl, totals.vat, totals.incl) == (D("0.50"), D("0.03"), D("0.53"))


def test_many_lines_with_mixed_rates_to_the_cent() -> None:
    lines = [
        ("0.335", "3.00", "0", "20"),  # 1.005 → 1.01
        ("0.335", "3.00", "0", "5.5"),
        ("12", "189.99", "0", "20"),
        ("2.5", "650.00", "0", "10"),
        ("1", "0.01", "0", "2.1"),
        ("0.125", "99.99", "0", "5.5"),  # 12.49875 → 12.50
        ("7", "13.33", "15", "20"),  # 79.3135 → 79.31
        ("1", "1200.00", "0", "0"),
        ("48", "2.45", "0", "10"),
        ("1.5", "333.33", "3.5", "20"),  # 482.495175 → 482.50
    ]
    computed = money.totals((money.line_amount(D(q), D(p), D(d)), D(r)) for q, p, d, r in lines)
    excl, vat, incl = _reference(lines)
    assert _as_cents(computed.excl) == excl
    assert _as_cents(computed.incl) == incl
    assert {f"{s.rate.normalize():f}": _as_cents(s.vat) for s in computed.by_rate} == vat
    assert [s.rate for s in computed.by_rate] == sorted(s.rate for s in computed.by_rate)
    assert computed.incl == computed.excl + computed.vat
    assert computed.excl == D("5798.82")  # added up by hand from the comments


@given(
    st.lists(
        st.tuples(
            st.integers(1, 5_000_000).map(lambda t: f"{t // 1000}.{t % 1000:03d}"),
            st.integers(0, 9_999_999).map(lambda c: f"{c // 100}.{c % 100:02d}"),
            st.sampled_from(["0", "2.5", "10", "33.33"]),
            st.sampled_from(["0", "2.1", "5.5", "10", "20"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_totals_match_an_integer_computation(lines: list[tuple[str, str, str, str]]) -> None:
    computed = money.totals((money.line_amount(D(q), D(p), D(d)), D(r)) for q, p, d, r in lines)
    excl, vat, incl = _reference(lines)
    assert (_as_cents(computed.excl), _as_cents(computed.incl)) == (excl, incl)
    assert _as_cents(computed.vat) == sum(vat.values())


def test_the_order_of_lines_does_not_change_the_totals() -> None:
    lines = [(money.line_amount(D(f"0.{n:03d}"), D("3.00")), D("20")) for n in range(1, 200)]
    shuffled = lines[:]
    random.Random(7).shuffle(shuffled)
    assert money.totals(lines) == money.totals(shuffled)


def test_french_formatting() -> None:
    assert money.french_euros(D("1234.56")) == "1\u00a0234,56\u00a0€"
    assert money.french_euros(D("1234567")) == "1\u00a0234\u00a0567,00\u00a0€"
    assert money.french_euros(D("0.5")) == "0,50\u00a0€"
    assert money.french_rate(D("5.50")) == "5,5\u00a0%"
    assert money.french_rate(D("20.00")) == "20\u00a0%"
