"""Configuration from `CIVICSENSE_*` environment variables (and `.env`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the platform; empty URLs mean "start an embedded one" (demo only)."""

    model_config = SettingsConfigDict(env_prefix="CIVICSENSE_", env_file=".env", extra="ignore")

    database_url: str = Field("", description="PostgreSQL URL; empty: embedded PostgreSQL")
    mqtt_url: str = Field("", description="mqtt://user:pass@host:1883; empty: local broker")
    data_dir: str = Field("./var", description="where embedded services keep their data")

    timeseries: Literal["auto", "timescaledb", "native"] = "auto"
    chunk_interval_days: int = Field(7, ge=1, description="partition / chunk width")
    partitions_ahead: int = Field(4, ge=1, description="native partitions created ahead")
    raw_retention_days: int = Field(730, ge=1, description="raw uplinks kept this long")
    readings_retention_days: int = Field(1825, ge=1, description="readings kept this long")
    compress_after_days: int = Field(14, ge=1, description="TimescaleDB compression age")
    # Personal data (docs/privacy.md). Plates: the CNIL (stationnement payant, 2017) asks
    # that a plate be kept only until payment is reconciled or the FPS procedure started;
    # 90 days covers the FPS's 3-month payment period, in which a session or a check is
    # the evidence of a RAPO. A town that needs longer (contentious FPS) changes it.
    plate_retention_days: int = Field(
        90, ge=1, description="plates kept in clear this long, then pseudonymised"
    )
    sessions_retention_days: int = Field(
        2190, ge=1, description="payment sessions and enforcement actions kept (accounts)"
    )
    audit_retention_days: int = Field(
        365, ge=1, description="audit trail kept this long (CNIL logging: 6 months to 1 year)"
    )

    mqtt_topic: str = "application/+/device/+/event/+"
    mqtt_client_id: str = ""
    mqtt_shared_group: str = ""
    mqtt_receive_maximum: int = Field(
        4000, ge=1, le=65535, description="unacknowledged messages in flight"
    )
    mqtt_session_expiry: int = Field(86400, ge=0, description="broker keeps the session (s)")
    event_format: Literal["auto", "json", "protobuf"] = "auto"

    batch_size: int = Field(1000, ge=1, description="flush a batch at this many messages")
    batch_max_age_ms: int = Field(200, ge=1, description="flush a batch at this age")
    device_cache_seconds: float = Field(30.0, ge=0)

    app_database_url: str = Field(
        "",
        description="login of the application role for web requests; empty: the owner's "
        "login switched to civicsense_app (SET ROLE)",
    )
    access_token_minutes: int = Field(15, ge=1, le=1440, description="access token lifetime")
    refresh_token_days: int = Field(14, ge=1, le=365, description="refresh token lifetime")
    session_hours: int = Field(12, ge=1, le=720, description="browser session lifetime")
    login_max_failures: int = Field(5, ge=1, description="failed logins before a lockout")
    login_lockout_minutes: int = Field(15, ge=1, description="lockout after repeated failures")
    login_max_failures_per_source: int = Field(
        20, ge=1, description="failed logins from one address in the window before a 429"
    )
    secure_cookies: bool = Field(False, description="mark session cookies Secure (HTTPS)")
    http_ingest_token: SecretStr | None = Field(
        None, description="bearer token ChirpStack's HTTP integration must send"
    )
    secret_key: SecretStr | None = Field(
        None, description="Fernet key: secrets at rest, token signing (civicsense secret-key)"
    )

    chirpstack_api_url: str = Field(
        "", description="ChirpStack gRPC API, host:port; empty: devices are not provisioned"
    )
    chirpstack_api_token: SecretStr | None = Field(None, description="ChirpStack API key")
    chirpstack_tls: bool = Field(False, description="gRPC over TLS")
    chirpstack_applications: dict[str, str] = Field(
        default_factory=dict, description='tenant slug → application id (JSON: {"lyon": "..."})'
    )
    chirpstack_device_profiles: dict[str, str] = Field(
        default_factory=dict, description="device model → device-profile id (JSON)"
    )
    chirpstack_requests_per_second: float = Field(
        20.0, gt=0, description="provisioning calls per second at most"
    )
    photo_max_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="largest photo accepted (devices, enforcement actions), bytes",
    )

    map_tile_url: str = Field(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="map tiles of the control map ({z}/{x}/{y}); the town's tile server",
    )
    smtp_url: SecretStr | None = Field(
        None,
        description="smtp://user:pass@host:587 (STARTTLS when offered) or smtps://...:465;"
        " empty: reports are not e-mailed",
    )
    smtp_from: str = Field("civicsense@localhost", description="From address of reports")
    report_hour: int = Field(
        6, ge=0, le=23, description="local hour after which yesterday's reports are e-mailed"
    )

    scheduler: bool = Field(
        True, description="serve runs the scheduled jobs; off when `civicsense scheduler` does"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: lines for a terminal; json: one JSON object per line (time, level,"
        " logger, message, request_id, event_id) for a deployment's log collector",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="bearer token Prometheus sends to GET /metrics of the web app; empty:"
        " /metrics answers 404",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="serve, ingest and scheduler also expose their metrics, unauthenticated,"
        " on http://METRICS_HOST:METRICS_PORT/metrics (a private network only); empty: off",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address of the metrics port (0.0.0.0: every interface)"
    )

    @field_validator(
        "http_ingest_token", "secret_key", "chirpstack_api_token", "smtp_url", "metrics_token",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        """`CIVICSENSE_X=` in an .env file means "not set", never "the empty secret"."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _retentions_nest(self) -> Settings:
        if self.plate_retention_days > self.sessions_retention_days:
            raise ValueError(
                f"plate_retention_days ({self.plate_retention_days}) must not exceed "
                f"sessions_retention_days ({self.sessions_retention_days}): a plate is "
                "pseudonymised within its session's life"
            )
        return self


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***`, for printing and logging."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
