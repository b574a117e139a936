"""The ChirpStack HTTP integration's bearer token (a static header set in ChirpStack).

Users and API keys authenticate through `core.identity.principal`; this token only
opens `POST /api/v1/ingest/chirpstack`.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(
    auto_error=False, scheme_name="ingestToken", description="CIVICSENSE_HTTP_INGEST_TOKEN"
)


def require_ingest_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency: the request carries the HTTP-integration token (set in ChirpStack)."""
    expected = request.app.state.settings.http_ingest_token
    if expected is None or not expected.get_secret_value():  # empty: unset, never "no token"
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "set CIVICSENSE_HTTP_INGEST_TOKEN first"
        )
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
