"""Tariff grids: what a stay costs and how long an amount buys.

French on-street tariffs are progressive grids: the first hour at one price per quarter hour,
the second dearer, and so on up to a maximum duration. A grid here is a list of steps; each
step prices the chargeable minutes from the previous step's end up to its own `up_to_minutes`,
billed by whole periods (a started period is due). Money is `Decimal` euros rounded to the cent
(ROUND_HALF_UP), never floats, so that a pay station, the API and a reconciliation agree.

Chargeable minutes are regulated minutes actually parked (see `hours.regulated_seconds`).

Two choices worth knowing:

- `free_minutes` are free for every stay, not only short ones: a 75-minute stay with 15 free
  minutes pays for 60 minutes, priced from the start of the grid.
- Minutes beyond the grid (and so beyond the maximum duration) are billed at the last step's
  rate. The agent sees an overstay and may issue a post-parking fee; the amount due here is
  what the time really parked costs, not a penalty.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = ["CENT", "Euros", "Tariff", "TariffStep", "amount_due", "paid_minutes_for"]

CENT = Decimal("0.01")
MAX_MINUTES = 7 * 24 * 60  # a week: no on-street stay is priced beyond
_MICROSECONDS_PER_MINUTE = 60_000_000


def _to_cent(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


#: A non-negative amount of euros with at most two decimals, stored to the cent ("0.50").
Euros = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("100000"), max_digits=10, decimal_places=2, allow_inf_nan=False),
    AfterValidator(_to_cent),
]


class TariffStep(BaseModel):
    """One step of a grid: chargeable minutes up to `up_to_minutes`, billed per period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    up_to_minutes: int = Field(
        strict=True, gt=0, le=MAX_MINUTES,
        description="Cumulative chargeable duration this step runs to.",
    )  # fmt: skip
    period_minutes: int = Field(
        strict=True, gt=0, le=MAX_MINUTES, description="Billing granularity."
    )
    price_per_period: Euros


class Tariff(BaseModel):
    """A zone's tariff grid, with free minutes, a minimum charge and a maximum duration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Literal["EUR"] = "EUR"
    free_minutes: int = Field(
        default=0,
        strict=True,
        ge=0,
        le=MAX_MINUTES,
        description="Minutes free for every stay, short or long.",
    )
    steps: list[TariffStep] = Field(min_length=1, max_length=50)
    minimum_charge: Euros = Decimal("0.00")
    max_duration_minutes: int | None = Field(
        default=None,
        strict=True,
        gt=0,
        description="Longest stay allowed; the last step's up_to_minutes when not set.",
    )

    @model_validator(mode="after")
    def _consistent_grid(self) -> Self:
        previous = 0
        for index, step in enumerate(self.steps):
            if step.up_to_minutes <= previous:
                raise ValueError(
                    f"steps must have strictly increasing up_to_minutes: step {index} runs to "
                    f"{step.up_to_minutes} min, not after {previous} min"
                )
            previous = step.up_to_minutes
        if self.max_duration_minutes is not None and self.max_duration_minutes > previous:
            raise ValueError(
                f"max_duration_minutes ({self.max_duration_minutes}) must not exceed the last "
                f"step's up_to_minutes ({previous})"
            )
        return self

    @property
    def max_minutes(self) -> int:
        """The longest stay allowed, in chargeable minutes."""
        if self.max_duration_minutes is not None:
            return self.max_duration_minutes
        return self.steps[-1].up_to_minutes

    @classmethod
    def example(cls) -> Tariff:
        """A typical town centre: 0.50 €, 0.75 € then 1.00 € per quarter hour, 3 hours at most."""
        return cls(
            steps=[
                TariffStep(up_to_minutes=60, period_minutes=15, price_per_period=Decimal("0.50")),
                TariffStep(up_to_minutes=120, period_minutes=15, price_per_period=Decimal("0.75")),
                TariffStep(up_to_minutes=180, period_minutes=15, price_per_period=Decimal("1.00")),
            ],
            max_duration_minutes=180,
            minimum_charge=Decimal("0.50"),
        )


def amount_due(tariff: Tariff, chargeable_minutes: float) -> Decimal:
    """What `chargeable_minutes` of parking cost, in euros rounded to the cent.

    Durations are counted to the microsecond, so that float noise from adding up seconds
    (60.000000000001 minutes) does not start a new period.
    """
    if not math.isfinite(chargeable_minutes) or chargeable_minutes < 0:
        raise ValueError(
            f"chargeable_minutes must be a finite number >= 0, got {chargeable_minutes!r}"
        )
    parked = round(chargeable_minutes * _MICROSECONDS_PER_MINUTE)
    billable = max(0, parked - tariff.free_minutes * _MICROSECONDS_PER_MINUTE)
    total = Decimal(0)
    step_start = 0
    for index, step in enumerate(tariff.steps):
        last = index == len(tariff.steps) - 1
        step_end = step.up_to_minutes * _MICROSECONDS_PER_MINUTE
        in_step = billable - step_start if last else min(billable, step_end) - step_start
        if in_step <= 0:
            break
        period = step.period_minutes * _MICROSECONDS_PER_MINUTE
        periods = -(-in_step // period)
        total += periods * step.price_per_period
        step_start = step_end
    if total > 0:
        total = max(total, tariff.minimum_charge)
    return _to_cent(total)


def paid_minutes_for(tariff: Tariff, amount: Decimal) -> int:
    """The longest chargeable duration, in whole minutes, that `amount` euros pay for.

    The inverse of `amount_due`, for pay stations that sell a fixed amount; never more than
    the maximum duration. An amount below the minimum charge buys only the free minutes.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ValueError(f"amount must be a finite Decimal >= 0, got {amount!r}")
    # amount_due never decreases with the duration: find the last duration it allows.
    low, high = 0, tariff.max_minutes
    if amount_due(tariff, high) <= amount:
        return high
    while high - low > 1:  # amount_due(low) <= amount < amount_due(high), or low == 0
        middle = (low + high) // 2
        if amount_due(tariff, middle) <= amount:
            low = middle
        else:
            high = middle
    return low
