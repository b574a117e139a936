"""The identity API's payloads."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

_EMAIL = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
_TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


class TokenPair(BaseModel):
    """What a login or a refresh returns."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str | None = Field(None, description="absent for a TOTP-enrolment token")
    scope: str = Field(description="'full', or 'totp-enrolment' until a second factor is set")


class RefreshRequest(BaseModel):
    """A refresh token to exchange (it is revoked, a new pair is returned)."""

    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordChange(BaseModel):
    """Change one's own password."""

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class TotpEnrolment(BaseModel):
    """A second factor to add to an authenticator app, then confirm with a code."""

    otpauth_uri: str
    secret: str = Field(description="the same secret as in the URI, for manual entry")
    qr_svg: str = Field(description="the URI as an SVG QR code")


class TotpCode(BaseModel):
    """A 6-digit code from the authenticator app."""

    code: str = Field(min_length=6, max_length=12)


class RecoveryCodes(BaseModel):
    """Single-use codes that replace a TOTP code once each; shown only now."""

    recovery_codes: list[str]


class SessionStarted(BaseModel):
    """A browser session: the cookie is set; send csrf_token as X-CSRF-Token on writes."""

    csrf_token: str
    expires_at: datetime


class Me(BaseModel):
    """The caller."""

    kind: str
    id: int
    label: str
    tenant_id: int | None
    roles: list[str]
    permissions: list[str]
    scope: str


class UserCreate(BaseModel):
    """A new user of the acting tenant."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    email: str = Field(pattern=_EMAIL, max_length=254)
    display_name: str | None = Field(None, max_length=200, pattern=_TEXT)
    password: str = Field(min_length=1, max_length=256)
    roles: list[str] = Field(min_length=1, max_length=10)
    permissions: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UserUpdate(BaseModel):
    """Changes to a user (fields left out are kept)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    display_name: str | None = Field(None, max_length=200, pattern=_TEXT)
    roles: list[str] | None = Field(None, min_length=1, max_length=10)
    permissions: list[str] | None = Field(None, max_length=50)
    active: bool | None = None


class UserRead(BaseModel):
    """A user as the API shows it: never a hash or a secret."""

    id: int
    tenant_id: int | None
    email: str
    display_name: str | None
    roles: list[str]
    permissions: list[str] = Field(description="individual grants on top of the roles")
    active: bool
    totp_enabled: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiKeyCreate(BaseModel):
    """A new API key for an integration of the acting tenant."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=_TEXT)
    permissions: list[str] = Field(min_length=1, max_length=50)


class ApiKeyRead(BaseModel):
    """An API key without its secret."""

    id: int
    tenant_id: int
    name: str
    prefix: str
    permissions: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """The key itself is shown in this response only."""

    key: str


class ProviderCreate(BaseModel):
    """A payment provider allowed to push signed webhooks for the acting tenant."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    provider: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")


class ProviderRead(BaseModel):
    """A provider registration without its secret."""

    id: int
    tenant_id: int
    provider: str
    created_at: datetime
    revoked_at: datetime | None


class ProviderCreated(ProviderRead):
    """The HMAC-SHA256 signing secret is shown in this response only."""

    signing_secret: str
