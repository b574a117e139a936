"""Tariff grids: hand-computed amounts, exact cents, strict validation, inverse properties."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from parking.tariffs import Tariff, TariffStep, amount_due, paid_minutes_for

EXAMPLE = Tariff.example()


def grid(*steps: tuple[int, int, str], **fields: Any) -> Tariff:
    """A tariff from (up_to_minutes, period_minutes, price_per_period) triples."""
    rows = [
        {"up_to_minutes": up_to, "period_minutes": period, "price_per_period": price}
        for up_to, period, price in steps
    ]
    return Tariff.model_validate({"steps": rows, **fields})


# Example grid: 0.50 €/15 min to 60 min, 0.75 €/15 min to 120, 1.00 €/15 min to 180.
@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, "0.00"),
        (1, "0.50"),  # a started quarter hour is due
        (15, "0.50"),
        (16, "1.00"),
        (60, "2.00"),  # 4 × 0.50
        (61, "2.75"),  # 2.00 + 1 × 0.75
        (120, "5.00"),  # 2.00 + 4 × 0.75
        (179, "9.00"),  # 5.00 + 4 × 1.00
        (180, "9.00"),
        (200, "11.00"),  # overstay: 20 more minutes at the last rate, 2 × 1.00
        (15.0000000001, "0.50"),  # float noise does not start a period
        (15.01, "1.00"),
    ],
)
def test_amount_due_example_grid(minutes: float, expected: str) -> None:
    amount = amount_due(EXAMPLE, minutes)
    assert amount == Decimal(expected)
    assert str(amount) == expected  # always to the cent


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, "0.00"), (10, "0.00"), (15, "0.00"), (16, "0.50"), (75, "2.00"), (76, "2.75")],
)
def test_free_minutes_are_free_for_every_stay(minutes: float, expected: str) -> None:
    tariff = EXAMPLE.model_copy(update={"free_minutes": 15})
    assert amount_due(tariff, minutes) == Decimal(expected)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, "0.00"), (1, "0.40"), (20, "0.40"), (21, "0.50"), (60, "1.20")],
)
def test_minimum_charge_only_when_something_is_due(minutes: float, expected: str) -> None:
    tariff = grid((60, 5, "0.10"), minimum_charge="0.40")
    assert amount_due(tariff, minutes) == Decimal(expected)


def test_amounts_are_exact_to_the_cent() -> None:
    thirds = grid((60, 20, "0.33"), (120, 1, "0.01"))
    assert str(amount_due(thirds, 60)) == "0.99"  # 3 × 0.33 as floats is 0.9900000000000001
    assert str(amount_due(thirds, 70)) == "1.09"
    nickels = grid((60, 1, "0.05"))
    assert str(amount_due(nickels, 3)) == "0.15"  # as floats 0.15000000000000002


def test_prices_are_stored_to_the_cent() -> None:
    tariff = grid((60, 15, "0.5"), minimum_charge=1)
    assert tariff.steps[0].price_per_period == Decimal("0.50")
    assert '"price_per_period":"0.50"' in tariff.model_dump_json()
    assert '"minimum_charge":"1.00"' in tariff.model_dump_json()
    assert Tariff.model_validate_json(tariff.model_dump_json()) == tariff


def test_max_duration_defaults_to_the_last_step() -> None:
    assert grid((60, 15, "0.50"), (90, 15, "1.00")).max_minutes == 90
    assert grid((60, 15, "0.50"), (90, 15, "1.00"), max_duration_minutes=75).max_minutes == 75


@pytest.mark.parametrize(
    ("amount", "minutes"),
    [
        ("0", 0),
        ("0.49", 0),
        ("0.50", 15),
        ("0.99", 15),
        ("1.00", 30),
        ("2.00", 60),
        ("2.74", 60),
        ("2.75", 75),
        ("8.99", 165),
        ("9.00", 180),
        ("100", 180),  # never beyond the maximum duration
    ],
)
def test_paid_minutes_for_example_grid(amount: str, minutes: int) -> None:
    assert paid_minutes_for(EXAMPLE, Decimal(amount)) == minutes


def test_paid_minutes_for_counts_free_minutes_and_minimum() -> None:
    tariff = grid((60, 5, "0.10"), free_minutes=10, minimum_charge="0.40")
    assert paid_minutes_for(tariff, Decimal("0.00")) == 10
    assert paid_minutes_for(tariff, Decimal("0.39")) == 10  # below the minimum charge
    assert paid_minutes_for(tariff, Decimal("0.40")) == 30
    assert paid_minutes_for(tariff, Decimal("99")) == 60


def test_paid_minutes_for_capped_by_max_duration() -> None:
    tariff = EXAMPLE.model_copy(update={"max_duration_minutes": 90})
    assert paid_minutes_for(tariff, Decimal("100")) == 90


@pytest.mark.parametrize("minutes", [-1, float("nan"), float("inf")])
def test_amount_due_rejects_impossible_durations(minutes: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        amount_due(EXAMPLE, minutes)


@pytest.mark.parametrize("amount", [Decimal("-0.01"), Decimal("NaN"), 1.5])
def test_paid_minutes_for_rejects_impossible_amounts(amount: Any) -> None:
    with pytest.raises(ValueError, match="finite Decimal >= 0"):
        paid_minutes_for(EXAMPLE, amount)


STEP = {"up_to_minutes": 60, "period_minutes": 15, "price_per_period": "0.50"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"steps": [STEP, {**STEP, "up_to_minutes": 30}]},
            "strictly increasing up_to_minutes: step 1 runs to 30 min, not after 60 min",
        ),
        ({"steps": [STEP, STEP]}, "strictly increasing"),
        ({"steps": [{**STEP, "price_per_period": "-0.50"}]}, "greater than or equal to 0"),
        ({"steps": [{**STEP, "price_per_period": "0.505"}]}, "no more than 2 decimal places"),
        ({"steps": [{**STEP, "price_per_period": 0.1 + 0.2}]}, "no more than 10 digits"),
        ({"steps": [{**STEP, "price_per_period": "NaN"}]}, "finite number"),
        ({"steps": [STEP], "max_duration_minutes": 61}, "must not exceed the last step's"),
        ({"steps": [STEP], "max_duration_minutes": 0}, "greater than 0"),
        ({"steps": []}, "at least 1 item"),
        ({}, "steps"),
        ({"steps": [{**STEP, "period_minutes": 0}]}, "greater than 0"),
        ({"steps": [{**STEP, "up_to_minutes": 0}]}, "greater than 0"),
        ({"steps": [{**STEP, "up_to_minutes": "60"}]}, "valid integer"),
        ({"steps": [{**STEP, "up_to_minutes": 60.5}]}, "valid integer"),
        ({"steps": [{**STEP, "up_to_minutes": True}]}, "valid integer"),
        ({"steps": [STEP], "free_minutes": -1}, "greater than or equal to 0"),
        ({"steps": [STEP], "minimum_charge": "0.001"}, "no more than 2 decimal places"),
        ({"steps": [STEP], "currency": "USD"}, "Input should be 'EUR'"),
        ({"steps": [STEP], "vat": "20"}, "Extra inputs are not permitted"),
        ({"steps": [{**STEP, "colour": "red"}]}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_tariffs_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Tariff.model_validate(data)


def test_step_can_be_built_directly() -> None:
    step = TariffStep(up_to_minutes=30, period_minutes=10, price_per_period=Decimal("0.2"))
    assert step.price_per_period == Decimal("0.20")


# --- properties over random grids ---------------------------------------------------------


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    """Valid grids: 1 to 4 steps, periods of 1 to 60 minutes, prices up to 5.00 €."""
    boundaries = draw(
        st.lists(st.integers(1, 600), min_size=1, max_size=4, unique=True).map(sorted)
    )
    cents = st.integers(0, 500).map(lambda value: Decimal(value) / 100)
    steps = [
        TariffStep(
            up_to_minutes=up_to,
            period_minutes=draw(st.integers(1, 60)),
            price_per_period=draw(cents),
        )
        for up_to in boundaries
    ]
    max_duration = draw(st.none() | st.integers(1, boundaries[-1]))
    return Tariff(
        steps=steps,
        free_minutes=draw(st.integers(0, 30)),
        minimum_charge=draw(cents),
        max_duration_minutes=max_duration,
    )


minutes = st.floats(min_value=0, max_value=900, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(tariff=st.just(EXAMPLE) | tariffs(), first=minutes, second=minutes)
def test_amount_due_never_decreases_with_time(tariff: Tariff, first: float, second: float) -> None:
    shorter, longer = sorted((first, second))
    assert amount_due(tariff, shorter) <= amount_due(tariff, longer)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), tariff=st.just(EXAMPLE) | tariffs())
def test_paid_minutes_for_inverts_amount_due(data: st.DataObject, tariff: Tariff) -> None:
    parked = data.draw(st.integers(0, tariff.max_minutes))
    amount = amount_due(tariff, parked)
    bought = paid_minutes_for(tariff, amount)
    assert parked <= bought <= tariff.max_minutes
    assert amount_due(tariff, bought) <= amount  # what is sold is really paid for
