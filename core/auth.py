"""Interim API authentication: one bearer token from settings.

The identity issue replaces this with users, roles, API keys and tenant scoping;
until then no route but health is reachable without the token.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

_bearer = HTTPBearer(auto_error=False, description="CIVICSENSE_API_TOKEN")


def _check(expected: SecretStr | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    if expected is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no API token is configured")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency: the request carries the API token."""
    _check(request.app.state.settings.api_token, credentials)


def require_ingest_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Dependency: the request carries the HTTP-integration token (set in ChirpStack)."""
    settings = request.app.state.settings
    _check(settings.http_ingest_token or settings.api_token, credentials)
