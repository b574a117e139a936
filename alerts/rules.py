"""Alert rules: what condition on a device's readings or health raises an alert, and which
devices a rule watches.

Conditions (`Condition`, a tagged union on `kind`):

- `threshold`: a quantity above or below a value, optionally for a duration (`co2 > 1500`
  for 10 min), with a clear value for hysteresis: an alert raised above 1,500 ppm clears
  only below 1,000 ppm, so a value hovering around the threshold does not raise and clear
  an alert at every uplink. Between the two values nothing changes.
- `event`: a quantity equal to a value (`leak == 1`), raised at once, cleared by any other
  value. Low battery is a `threshold` on `battery` (%) below a value.
- `rate`: a quantity changing by at least `delta` within `window_minutes` (rising, falling
  or either way), cleared when the change over the window is back under `delta`.
- `silence`: a device that sent nothing for `factor` × its expected uplink interval (its
  own, else its model's), cleared when it speaks again; checked by a scheduled job.
- `gateway`: a gateway not heard in any uplink's radio metadata for `minutes`; checked by a
  scheduled job.

A rule's scope narrows the devices it watches: by model, site, tag (key and value) or one
device; empty, every device of the tenant. Shipped defaults (`TEMPLATES`) cover leaks,
classroom CO2, batteries and silence; a tenant installs them once and edits them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .sla import IncidentClass, Priority

QUANTITY = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
CATEGORY = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
_LIMIT = 1e9


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    """`quantity` above (or below) `value`, for `for_minutes`; clears past `clear_value`."""

    kind: Literal["threshold"] = "threshold"
    quantity: QUANTITY
    direction: Literal["above", "below"] = "above"
    value: float = Field(ge=-_LIMIT, le=_LIMIT, allow_inf_nan=False)
    for_minutes: float = Field(0, ge=0, le=7 * 24 * 60)
    clear_value: float | None = Field(
        None, ge=-_LIMIT, le=_LIMIT, allow_inf_nan=False,
        description="hysteresis: the alert clears only past this value (default: `value`)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _hysteresis_on_the_clear_side(self) -> Threshold:
        clear = self.clear_value
        if clear is not None and (clear > self.value if self.direction == "above"
                                  else clear < self.value):  # fmt: skip
            side = "at or below" if self.direction == "above" else "at or above"
            raise ValueError(f"clear_value must be {side} value for a rule '{self.direction}'")
        return self

    def holds(self, value: float) -> bool:
        """The alert condition holds for `value`."""
        return value > self.value if self.direction == "above" else value < self.value

    def clears(self, value: float) -> bool:
        """The clear condition holds for `value` (strictly past the clear value's side)."""
        clear = self.value if self.clear_value is None else self.clear_value
        return value <= clear if self.direction == "above" else value >= clear


class Event(_Strict):
    """`quantity == equals`, raised at once; any other value clears it."""

    kind: Literal["event"] = "event"
    quantity: QUANTITY
    equals: float = Field(1, allow_inf_nan=False)

    def holds(self, value: float) -> bool:
        """The reading is the event."""
        return value == self.equals

    def clears(self, value: float) -> bool:
        """The reading is anything else."""
        return value != self.equals


class Rate(_Strict):
    """`quantity` changing by `delta` or more within `window_minutes`."""

    kind: Literal["rate"] = "rate"
    quantity: QUANTITY
    delta: float = Field(gt=0, le=_LIMIT, allow_inf_nan=False)
    window_minutes: float = Field(gt=0, le=24 * 60)
    direction: Literal["rise", "fall", "any"] = "any"

    def holds_change(self, change: float) -> bool:
        """A change over the window (latest minus earliest) raises the alert."""
        if self.direction == "rise":
            return change >= self.delta
        if self.direction == "fall":
            return -change >= self.delta
        return abs(change) >= self.delta


class Silence(_Strict):
    """No uplink for `factor` × the device's expected interval."""

    kind: Literal["silence"] = "silence"
    factor: float = Field(3, ge=1, le=100)


class Gateway(_Strict):
    """A gateway not heard for `minutes` (one rule watches every gateway of the tenant)."""

    kind: Literal["gateway"] = "gateway"
    minutes: int = Field(30, ge=5, le=7 * 24 * 60)


Condition = Annotated[Threshold | Event | Rate | Silence | Gateway, Field(discriminator="kind")]
#: The conditions evaluated on each committed batch of readings (the others by jobs).
READING_KINDS = frozenset({"threshold", "event", "rate"})


class Scope(_Strict):
    """Which devices a rule watches; every field given must match."""

    model: str | None = Field(None, max_length=64)
    site: str | None = Field(None, max_length=200)
    tag_key: str | None = Field(None, max_length=64)
    tag_value: str | None = Field(None, max_length=200)
    device_id: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _tag_value_needs_key(self) -> Scope:
        if self.tag_value is not None and self.tag_key is None:
            raise ValueError("tag_value needs tag_key")
        return self

    def matches(self, model: str, site: str | None, tags: dict[str, str], device_id: int) -> bool:
        """The device is in scope."""
        if self.device_id is not None and device_id != self.device_id:
            return False
        if self.model is not None and model != self.model:
            return False
        if self.site is not None and site != self.site:
            return False
        if self.tag_key is not None:
            if self.tag_key not in tags:
                return False
            if self.tag_value is not None and tags[self.tag_key] != self.tag_value:
                return False
        return True


class RuleSpec(_Strict):
    """A rule as written by a user or shipped as a template."""

    name: str = Field(min_length=1, max_length=200)
    category: CATEGORY
    condition: Condition
    scope: Scope = Scope()
    incident_class: IncidentClass | None = None
    priority: Priority | None = None
    open_incident: bool = False
    enabled: bool = True

    @model_validator(mode="after")
    def _incident_needs_a_class(self) -> RuleSpec:
        if self.open_incident and self.incident_class is None:
            raise ValueError("a rule that opens incidents needs an incident_class")
        if self.condition.kind == "gateway" and self.scope != Scope():
            raise ValueError("a gateway rule watches every gateway of the tenant: no scope")
        return self


#: Shipped defaults, by template id. CO2: the two confinement thresholds of the ICONE index
#: used in French school air-quality surveys (1,000 and 1,700 ppm, CSTB method): above 1,000
#: ppm for 10 minutes the room needs airing (an alert); above 1,700 ppm for 10 minutes the
#: room is confined (an incident). Each clears 200 ppm lower.
TEMPLATES: dict[str, RuleSpec] = {
    "leak": RuleSpec(
        name="Fuite d'eau détectée", category="leak",
        condition=Event(quantity="leak", equals=1),
        incident_class=IncidentClass.BLOQUANT, priority=Priority.P0, open_incident=True,
    ),
    "co2-airing": RuleSpec(
        name="CO2 au-dessus de 1 000 ppm : aérer", category="air",
        condition=Threshold(quantity="co2", value=1000, for_minutes=10, clear_value=800),
    ),
    "co2-confinement": RuleSpec(
        name="Confinement : CO2 au-dessus de 1 700 ppm", category="air",
        condition=Threshold(quantity="co2", value=1700, for_minutes=10, clear_value=1500),
        incident_class=IncidentClass.MAJEUR, priority=Priority.P1, open_incident=True,
    ),
    "battery-low": RuleSpec(
        name="Pile faible", category="battery",
        condition=Threshold(quantity="battery", direction="below", value=20, clear_value=30),
        incident_class=IncidentClass.MINEUR, priority=Priority.P2, open_incident=True,
    ),
    "device-silent": RuleSpec(
        name="Capteur muet", category="silence", condition=Silence(factor=3),
        incident_class=IncidentClass.MINEUR, priority=Priority.P2, open_incident=True,
    ),
    "gateway-silent": RuleSpec(
        name="Passerelle injoignable", category="gateway", condition=Gateway(minutes=30),
        incident_class=IncidentClass.MAJEUR, priority=Priority.P1, open_incident=True,
    ),
}  # fmt: skip
