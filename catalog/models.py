"""Pydantic models of the catalogue: domains, solutions' content, price lines, versions.

Money is `Decimal` with at most two decimal places, never a float; it is kept to the cent
(`12.5` is stored and served as `"12.50"`) and served as a JSON string. Input models check
content against the platform: device models against `devices.device_models`, alert-rule
templates against `alerts.rules.TEMPLATES` (or as a full `RuleSpec`). Read models only
describe what is stored: an old version stays readable even if a model it names is gone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from alerts.rules import TEMPLATES, RuleSpec
from devices import device_models

from .lifecycle import Status

CENT = Decimal("0.01")
#: The French VAT rates (CGI art. 278 to 281 nonies, and 0 for exempt services).
VAT_RATES = frozenset({Decimal(0), Decimal("2.1"), Decimal("5.5"), Decimal(10), Decimal(20)})
SLUG = r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$"
DOMAIN_CODE = r"^[a-z][a-z0-9_]{1,39}$"
LINE_CODE = r"^[a-z0-9][a-z0-9_-]{0,62}$"

Kind = Literal["hardware", "software", "service"]
Unit = Literal["device", "year", "month", "day", "unit"]
Complexity = Literal["simple", "standard", "complexe"]


def _to_the_cent(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _french_vat(rate: Decimal) -> Decimal:
    if rate not in VAT_RATES:
        allowed = ", ".join(str(r) for r in sorted(VAT_RATES))
        raise ValueError(f"VAT rate {rate} is not a French rate ({allowed})")
    return rate.quantize(CENT)


def _known_model(model: str) -> str:
    if model not in device_models.catalogue():
        raise ValueError(f"unknown device model {model!r} (see GET /api/v1/device-models)")
    return model


def _known_template(template: str) -> str:
    if template not in TEMPLATES:
        raise ValueError(f"unknown alert-rule template {template!r} ({', '.join(TEMPLATES)})")
    return template


Money = Annotated[
    Decimal, Field(ge=0, max_digits=12, decimal_places=2), AfterValidator(_to_the_cent)
]
Quantity = Annotated[
    Decimal, Field(gt=0, max_digits=12, decimal_places=2), AfterValidator(_to_the_cent)
]
VatRate = Annotated[Decimal, Field(max_digits=5, decimal_places=2), AfterValidator(_french_vat)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


#: Read models take database rows, which hold more than they serve (ids...).
_READ = ConfigDict(extra="ignore")


# --- domains -----------------------------------------------------------------------------


class DomainCreate(_Strict):
    """A use-case domain (parking, air_indoor, leak...)."""

    code: Annotated[str, Field(pattern=DOMAIN_CODE)]
    name_fr: ShortText
    name_en: ShortText


class DomainRead(DomainCreate):
    """A domain as served."""

    model_config = _READ

    created_at: datetime


# --- content shapes (read and written) ----------------------------------------------------


class DeviceUse(_Strict):
    """A device model a solution uses, with the count of a typical deployment (or null)."""

    model: str
    quantity: int | None = Field(None, ge=1, le=100_000)


class Prerequisite(_Strict):
    """Something the town must have or do first (a LoRaWAN coverage, a network access...)."""

    fr: Annotated[str, Field(min_length=1, max_length=1000)]
    en: Annotated[str, Field(min_length=1, max_length=1000)]


class RoiFigure(_Strict):
    """One typical return-on-investment figure, e.g. 15 % fewer unpaid parking hours."""

    label_fr: ShortText
    label_en: ShortText
    value: Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
    unit: Annotated[str, Field(min_length=1, max_length=20)]


class Roi(_Strict):
    """Typical return on investment, with the assumptions it rests on."""

    payback_months: int | None = Field(None, ge=1, le=240)
    figures: list[RoiFigure] = []
    assumptions_fr: str = Field("", max_length=2000)
    assumptions_en: str = Field("", max_length=2000)


class Document(_Strict):
    """A datasheet, manual or certificate, by link."""

    title: ShortText
    url: HttpUrl
    kind: Literal["datasheet", "manual", "certificate", "brochure", "other"] = "other"


class PriceLineBase(_Strict):
    """A price line excl. tax: what is sold, per what unit, at what price and VAT rate.

    `complexity` grades services (installation days cost more on a `complexe` site);
    `device_model` ties a hardware line to one of the solution's models;
    `typical_quantity` is that of a typical deployment, for the typical total.
    """

    code: Annotated[str, Field(pattern=LINE_CODE)]
    label_fr: Annotated[str, Field(min_length=1, max_length=300)]
    label_en: Annotated[str, Field(min_length=1, max_length=300)]
    kind: Kind
    unit: Unit
    unit_price: Money
    vat_rate: VatRate
    complexity: Complexity | None = None
    device_model: str | None = None
    typical_quantity: Quantity = Decimal("1.00")


class PriceLineIn(PriceLineBase):
    """A price line as written: complexity grades services only."""

    @model_validator(mode="after")
    def _complexity_on_services(self) -> Self:
        if self.complexity is not None and self.kind != "service":
            raise ValueError(f"line {self.code}: complexity applies to service lines only")
        return self


def _template(value: str | RuleSpec) -> str | RuleSpec:
    return _known_template(value) if isinstance(value, str) else value


RuleTemplate = Annotated[str | RuleSpec, AfterValidator(_template)]


class SolutionContent(_Strict):
    """What a version holds; every change to it makes a new version."""

    domain: Annotated[str, Field(pattern=DOMAIN_CODE)]
    name_fr: ShortText
    name_en: ShortText
    description_fr: str = Field("", max_length=10_000)
    description_en: str = Field("", max_length=10_000)
    device_models: list[DeviceUse] = Field(default=[], max_length=50)
    software_modules: list[Annotated[str, Field(min_length=1, max_length=100)]] = []
    rule_templates: list[RuleTemplate] = Field(
        default=[],
        max_length=50,
        description="template ids of GET /api/v1/alerts/rules/templates, or full rules",
    )
    prerequisites: list[Prerequisite] = []
    roi: Roi = Roi()
    documents: list[Document] = []
    price_lines: list[PriceLineIn] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        models = [use.model for use in self.device_models]
        for model in models:
            _known_model(model)
        if len(set(models)) != len(models):
            raise ValueError("a device model is listed twice")
        codes = [line.code for line in self.price_lines]
        if len(set(codes)) != len(codes):
            raise ValueError("two price lines share a code")
        for line in self.price_lines:
            if line.device_model is not None and line.device_model not in models:
                raise ValueError(f"line {line.code}: {line.device_model!r} is not in device_models")
        for rule in self.rule_templates:
            if isinstance(rule, RuleSpec) and rule.scope.model not in (None, *models):
                raise ValueError(f"rule {rule.name!r} watches a model the solution does not use")
        return self


class SolutionCreate(SolutionContent):
    """A new solution (status proposed, version 1)."""

    slug: Annotated[str, Field(pattern=SLUG)]
    change_reason: Reason = "Version initiale"


class SolutionUpdate(_Strict):
    """A change: the fields given replace the current version's (price_lines as a whole);
    the result is the next version, with its reason."""

    change_reason: Reason
    domain: Annotated[str, Field(pattern=DOMAIN_CODE)] | None = None
    name_fr: ShortText | None = None
    name_en: ShortText | None = None
    description_fr: str | None = Field(None, max_length=10_000)
    description_en: str | None = Field(None, max_length=10_000)
    device_models: list[DeviceUse] | None = None
    software_modules: list[str] | None = None
    rule_templates: list[RuleTemplate] | None = None
    prerequisites: list[Prerequisite] | None = None
    roi: Roi | None = None
    documents: list[Document] | None = None
    price_lines: list[PriceLineIn] | None = None

    def changes(self) -> dict[str, Any]:
        """The content fields given (null is not a value here: every field is required)."""
        given = self.model_dump(exclude_unset=True, exclude={"change_reason"})
        return {name: value for name, value in given.items() if value is not None}


class Transition(_Strict):
    """A lifecycle step and why."""

    to: Status
    reason: Reason


# --- read models ---------------------------------------------------------------------------


class PriceLineRead(PriceLineBase):
    """A price line as served (money as strings, to the cent)."""

    model_config = _READ


class StatusChangeRead(_Strict):
    """One lifecycle transition."""

    model_config = _READ

    from_status: Status
    to_status: Status
    reason: str
    actor: str
    at: datetime


class VersionSummary(_Strict):
    """One version in a solution's history."""

    model_config = _READ

    version: int
    change_reason: str
    created_by: str
    created_at: datetime
    typical_total_excl_tax: Decimal = Field(
        description="Σ unit price × typical quantity of the version's lines, excl. tax"
    )


class SolutionVersionRead(VersionSummary):
    """One version's full content."""

    slug: str
    domain: str
    name_fr: str
    name_en: str
    description_fr: str
    description_en: str
    device_models: list[DeviceUse]
    software_modules: list[str]
    rule_templates: list[str | dict[str, Any]]
    prerequisites: list[Prerequisite]
    roi: dict[str, Any]
    documents: list[dict[str, Any]]
    price_lines: list[PriceLineRead]
    typical_total_incl_tax: Decimal = Field(description="the same with each line's VAT")


class SolutionRead(SolutionVersionRead):
    """A solution: its status, its current version's content, its lifecycle history."""

    status: Status
    current_version: int
    updated_at: datetime
    status_changes: list[StatusChangeRead]


class SolutionSummary(_Strict):
    """A solution in search results."""

    model_config = _READ

    slug: str
    status: Status
    current_version: int
    domain: str
    name_fr: str
    name_en: str
    device_models: list[DeviceUse]
    typical_total_excl_tax: Decimal
    updated_at: datetime
