"""Pydantic models of the device registry."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    computed_field,
    field_validator,
)

from . import codecs, tags

_SEPARATORS = re.compile(r"[\s:\-_.]")


def normalise_eui(value: str) -> str:
    """16 hex digits, lowercase; any of `: - _ .` or spaces accepted between them."""
    text = _SEPARATORS.sub("", value).lower()
    if not re.fullmatch(r"[0-9a-f]{16}", text):
        raise ValueError("must be 16 hexadecimal digits (8 bytes), e.g. 24E124136C225107")
    return text


def _normalise_app_key(value: SecretStr) -> SecretStr:
    text = _SEPARATORS.sub("", value.get_secret_value()).lower()
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise ValueError("AppKey must be 32 hexadecimal digits (16 bytes)")
    return SecretStr(text)


Eui = Annotated[str, AfterValidator(normalise_eui)]
AppKey = Annotated[SecretStr, AfterValidator(_normalise_app_key)]
Tags = Annotated[dict[str, str], AfterValidator(tags.check)]
_TAGS = (
    'labels, key → value (a bare label has the value ""): keys of 1 to 64 letters, digits,'
    " _ . -, values of at most 200 printable characters, at most 32 tags; civicsense_tenant,"
    " site and bay are reserved"
)


class DeviceBase(BaseModel):
    """Fields a technician sets."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    dev_eui: Eui
    model: str
    name: str = Field(min_length=1, max_length=200)
    join_eui: Eui | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    site: str | None = Field(None, max_length=200)
    bay: str | None = Field(None, max_length=100)
    tags: Tags = Field(default_factory=dict, description=_TAGS)

    @field_validator("name", "site", "bay", mode="after")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("lat", "lon", mode="before")
    @classmethod
    def _decimal_comma(cls, value: object) -> object:
        """Accept French decimal commas (`45,7640`), as spreadsheets export them."""
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+,\d+\s*", value):
            return value.replace(",", ".")
        return value

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        model = value.lower()
        if model not in codecs.registry():
            raise ValueError(f"unknown model; known models: {', '.join(codecs.models())}")
        return model


class DeviceCreate(DeviceBase):
    """A registration; the AppKey is write-only."""

    app_key: AppKey | None = None


class DeviceUpdate(BaseModel):
    """Changes to a device (fields left out are kept); a new AppKey replaces the old one."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    model: str | None = None
    name: str | None = Field(None, min_length=1, max_length=200)
    join_eui: Eui | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    site: str | None = Field(None, max_length=200)
    bay: str | None = Field(None, max_length=100)
    tags: Tags | None = Field(None, description=_TAGS + "; replaces the whole map")
    app_key: AppKey | None = None


class DeviceRead(DeviceBase):
    """A device as the API returns it (never its AppKey)."""

    id: int
    tenant_id: int
    status: str
    has_app_key: bool
    provisioned_at: datetime | None = None
    provisioning_error: str | None = None
    last_seen_at: datetime | None = None
    expected_interval_s: int | None = None
    photo_uploaded_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_photo(self) -> bool:
        """Whether an installation photo is stored."""
        return self.photo_uploaded_at is not None


class DeviceHealth(BaseModel):
    """What a technician checks after installing a device."""

    last_seen: datetime | None
    battery: float | None = Field(description="latest battery reading, %")
    rssi: float | None = Field(description="mean RSSI of the last 10 uplinks, dBm")
    snr: float | None = Field(description="mean SNR of the last 10 uplinks, dB")
    gateways: list[str] = Field(description="gateways that heard its recent uplinks")


class DeviceDetail(DeviceRead):
    """A device with its health."""

    health: DeviceHealth


EDITABLE_FIELDS = ("join_eui", "model", "name", "site", "bay", "lat", "lon", "tags")
