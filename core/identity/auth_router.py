"""`/auth`: log in (tokens or browser session), refresh, log out, TOTP, password, me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from ..settings import Settings
from . import service
from .models import (
    Me,
    PasswordChange,
    RecoveryCodes,
    RefreshRequest,
    SessionStarted,
    TokenPair,
    TotpCode,
    TotpEnrolment,
)
from .principal import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Caller,
    PrivilegedConn,
    check,
    client_address,
)

router = APIRouter(prefix="/auth", tags=["auth"])


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@router.post("/token", response_model=TokenPair)
def token(
    request: Request,
    conn: PrivilegedConn,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    otp: Annotated[str | None, Form(max_length=32, description="TOTP or recovery code")] = None,
) -> TokenPair:
    """OAuth2 password flow: e-mail as `username`, password, and `otp` for a second factor.

    Administrators without a second factor get a token limited to TOTP enrolment."""
    source = client_address(request)
    result = service.login(
        conn, _settings(request), email=form.username, password=form.password, otp=otp,
        source=source,
    )  # fmt: skip
    return service.issue_tokens(
        conn, _settings(request), user=result.user, scope=result.scope, source=source
    )


@router.post("/refresh", response_model=TokenPair)
def refresh(request: Request, conn: PrivilegedConn, body: RefreshRequest) -> TokenPair:
    """A new token pair for a refresh token, which is used up."""
    return service.refresh(
        conn, _settings(request), refresh_token=body.refresh_token,
        source=client_address(request),
    )  # fmt: skip


@router.post("/session", response_model=SessionStarted)
def start_session(
    request: Request,
    response: Response,
    conn: PrivilegedConn,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    otp: Annotated[str | None, Form(max_length=32)] = None,
) -> SessionStarted:
    """Log in a browser: sets the session cookie (HttpOnly) and the CSRF cookie."""
    settings = _settings(request)
    source = client_address(request)
    result = service.login(
        conn, settings, email=form.username, password=form.password, otp=otp, source=source
    )
    cookie, csrf, expires_at = service.start_session(conn, settings, result, source=source)
    max_age = settings.session_hours * 3600
    secure = settings.secure_cookies
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=max_age, httponly=True, secure=secure, samesite="lax"
    )
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, secure=secure, samesite="strict")
    return SessionStarted(csrf_token=csrf, expires_at=expires_at)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
def end_session(request: Request, conn: PrivilegedConn, _caller: Caller) -> Response:
    """Log the browser session out and clear its cookies."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service.end_session(conn, cookie)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/me", response_model=Me)
def me(caller: Caller) -> Me:
    """Who the credentials belong to, and what they allow."""
    return Me(
        kind=caller.kind,
        id=caller.id,
        label=caller.label,
        tenant_id=caller.tenant_id,
        roles=sorted(caller.roles),
        permissions=sorted(caller.permissions),
        scope=caller.scope,
    )


@router.post("/totp/enrol", response_model=TotpEnrolment)
def totp_enrol(request: Request, conn: PrivilegedConn, caller: Caller) -> TotpEnrolment:
    """Start TOTP enrolment: scan the QR code, then confirm with a code."""
    return service.enrol_totp(conn, _settings(request), caller)


@router.post("/totp/confirm", response_model=RecoveryCodes)
def totp_confirm(
    request: Request, conn: PrivilegedConn, caller: Caller, body: TotpCode
) -> RecoveryCodes:
    """Activate the second factor; returns the recovery codes, shown this once."""
    codes = service.confirm_totp(conn, _settings(request), caller, body.code)
    return RecoveryCodes(recovery_codes=codes)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(conn: PrivilegedConn, caller: Caller, body: PasswordChange) -> Response:
    """Change one's password: every token and session issued before stops working."""
    check(caller, ())
    service.change_password(conn, caller, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
