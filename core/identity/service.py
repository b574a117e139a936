"""Identity logic: logins with lockout and second factor, tokens and sessions, TOTP
enrolment, and the management of users, API keys and payment providers.

Functions take the connection they must work through: the privileged one for logins
(the tenant is not known yet), a tenant-scoped one (`principal.Scope`) for management.
Failed logins are committed before the error is raised, so that throttling and the
audit trail see them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from .. import audit, crypto
from ..audit import Actor
from ..settings import Settings
from . import passwords, repository, tokens, totp
from .models import (
    ApiKeyCreate,
    PasswordChange,
    ProviderCreate,
    TokenPair,
    TotpEnrolment,
    UserCreate,
    UserUpdate,
)
from .permissions import ADMIN_ROLES, PERMISSIONS, ROLES, level_of
from .principal import Principal

log = logging.getLogger("civicsense.identity")


class IdentityError(Exception):
    """A refusal with its HTTP status: 400, 401, 403, 404, 409, 422 or 429."""

    def __init__(self, status: int, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Login:
    """A successful password (and second-factor) check."""

    user: dict[str, Any]
    scope: str


def _now() -> datetime:
    return datetime.now(UTC)


def _anonymous(email: str, source: str | None) -> Actor:
    return Actor("anonymous", email or "anonymous", source=source)


def _fail(
    conn: psycopg.Connection,
    actor: Actor,
    reason: str,
    *,
    status: int = 401,
    detail: str = "wrong e-mail or password",
    retry_after: int | None = None,
) -> IdentityError:
    audit.record(
        conn, actor, "auth.login", target=actor.label, outcome="failure", details={"reason": reason}
    )
    conn.commit()
    return IdentityError(status, detail, retry_after=retry_after)


def login(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    email: str,
    password: str,
    otp: str | None,
    source: str | None,
) -> Login:
    """Check e-mail, password and (for whoever has one, and every admin) the second factor."""
    email = email.strip().lower().replace("\x00", "")  # text cannot hold NUL: no such user
    window = settings.login_lockout_minutes
    if source and audit.recent_failures_from(conn, source, minutes=window) >= (
        settings.login_max_failures_per_source
    ):
        raise IdentityError(
            429, "too many failed logins from this address; try again later",
            retry_after=window * 60,
        )  # fmt: skip
    user = repository.user_by_email(conn, email)
    actor = (
        Actor("user", email, user["id"], user["tenant_id"], source)
        if user
        else _anonymous(email, source)
    )
    if user and user["locked_until"] and user["locked_until"] > _now():
        wait = int((user["locked_until"] - _now()).total_seconds()) + 1
        raise _fail(
            conn, actor, "locked", status=429,
            detail="too many failed logins: this account is locked for a while",
            retry_after=wait,
        )  # fmt: skip
    if not passwords.verify_password(user["password_hash"] if user else None, password):
        if user:
            repository.login_failed(
                conn, user["id"], max_failures=settings.login_max_failures,
                lockout_minutes=settings.login_lockout_minutes,
            )  # fmt: skip
        raise _fail(conn, actor, "bad_credentials")
    assert user is not None
    if not user["active"]:
        raise _fail(conn, actor, "deactivated")
    scope = _second_factor(conn, settings, user, otp, actor)
    repository.login_succeeded(conn, user["id"])
    if passwords.needs_rehash(user["password_hash"]):
        repository.update_user(conn, user["id"], password_hash=passwords.hash_password(password))
    audit.record(conn, actor, "auth.login", target=email, details={"scope": scope})
    return Login(user, scope)


def _second_factor(
    conn: psycopg.Connection,
    settings: Settings,
    user: dict[str, Any],
    otp: str | None,
    actor: Actor,
) -> str:
    """The token scope after the second factor, or a refusal."""
    if user["totp_secret"] is None:
        if ADMIN_ROLES & set(user["roles"]):
            return tokens.SCOPE_TOTP_ENROLMENT
        return tokens.SCOPE_FULL
    if not otp:
        raise _fail(
            conn, actor, "second_factor_missing",
            detail="a TOTP code (or a recovery code) is required in the otp field",
        )  # fmt: skip
    secret = crypto.decrypt(settings, bytes(user["totp_secret"]))
    step = totp.accepted_step(secret, otp, last_step=user["totp_last_step"])
    if step is not None:
        repository.update_user(conn, user["id"], totp_last_step=step)
        return tokens.SCOPE_FULL
    code_hash = tokens.keyed_hash(settings, totp.normalise_recovery_code(otp))
    if code_hash in user["recovery_codes"]:
        remaining = [c for c in user["recovery_codes"] if c != code_hash]
        repository.update_user(conn, user["id"], recovery_codes=remaining)
        audit.record(
            conn, actor, "auth.recovery_code", target=actor.label,
            details={"remaining": len(remaining)},
        )  # fmt: skip
        return tokens.SCOPE_FULL
    repository.login_failed(
        conn, user["id"], max_failures=settings.login_max_failures,
        lockout_minutes=settings.login_lockout_minutes,
    )  # fmt: skip
    raise _fail(conn, actor, "second_factor_wrong", detail="wrong or already used TOTP code")


def issue_tokens(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    user: dict[str, Any],
    scope: str,
    source: str | None,
) -> TokenPair:
    """An access token, and a refresh token for full-scope logins."""
    user_id = user["id"]
    access = tokens.issue_access(
        settings, user_id=user_id, password_changed_at=user["password_changed_at"], scope=scope
    )
    refresh = None
    if scope == tokens.SCOPE_FULL:
        refresh = tokens.new_secret()
        repository.insert_session(
            conn, user_id=user_id, kind="refresh", token_hash=tokens.secret_hash(refresh),
            csrf_hash=None, expires_at=_now() + timedelta(days=settings.refresh_token_days),
            source=source,
        )  # fmt: skip
    return TokenPair(
        access_token=access,
        expires_in=settings.access_token_minutes * 60,
        refresh_token=refresh,
        scope=scope,
    )


def refresh(
    conn: psycopg.Connection, settings: Settings, *, refresh_token: str, source: str | None
) -> TokenPair:
    """Exchange a refresh token for a new pair; a reused one revokes every session."""
    session = repository.session_by_hash(conn, "refresh", tokens.secret_hash(refresh_token))
    if session is None or not session["live"]:
        raise IdentityError(401, "invalid or expired refresh token")
    user = repository.user_by_id(conn, session["user_id"])
    if session["revoked_at"] is not None:
        repository.revoke_user_sessions(conn, session["user_id"])
        if user:
            actor = Actor("user", user["email"], user["id"], user["tenant_id"], source)
            audit.record(
                conn, actor, "auth.refresh", outcome="failure",
                details={"reason": "reused_refresh_token", "sessions": "all revoked"},
            )  # fmt: skip
        conn.commit()
        raise IdentityError(401, "this refresh token was already used: log in again")
    repository.revoke_session(conn, session["id"])
    if user is None or not user["active"]:
        raise IdentityError(401, "this account no longer exists or is deactivated")
    return issue_tokens(conn, settings, user=user, scope=tokens.SCOPE_FULL, source=source)


def start_session(
    conn: psycopg.Connection, settings: Settings, login_result: Login, *, source: str | None
) -> tuple[str, str, datetime]:
    """A browser session for a full login: (cookie value, CSRF token, expiry)."""
    if login_result.scope != tokens.SCOPE_FULL:
        raise IdentityError(
            403, "enrol a TOTP second factor first (POST /auth/totp/enrol with a token)"
        )
    cookie, csrf = tokens.new_secret(), tokens.new_secret()
    expires_at = _now() + timedelta(hours=settings.session_hours)
    repository.insert_session(
        conn, user_id=login_result.user["id"], kind="cookie",
        token_hash=tokens.secret_hash(cookie), csrf_hash=tokens.secret_hash(csrf),
        expires_at=expires_at, source=source,
    )  # fmt: skip
    return cookie, csrf, expires_at


def end_session(conn: psycopg.Connection, cookie: str) -> None:
    """Log a browser session out (idempotent)."""
    session = repository.session_by_hash(conn, "cookie", tokens.secret_hash(cookie))
    if session is not None:
        repository.revoke_session(conn, session["id"])


def _caller_row(conn: psycopg.Connection, principal: Principal) -> dict[str, Any]:
    if principal.kind != "user":
        raise IdentityError(403, "only a user can do this, not an API key")
    user = repository.user_by_id(conn, principal.id)
    if user is None:
        raise IdentityError(401, "this account no longer exists")
    return user


def enrol_totp(conn: psycopg.Connection, settings: Settings, principal: Principal) -> TotpEnrolment:
    """Start (or restart) TOTP enrolment; confirmed by `confirm_totp`."""
    user = _caller_row(conn, principal)
    if user["totp_secret"] is not None:
        raise IdentityError(409, "a second factor is already active on this account")
    secret = totp.new_secret()
    repository.update_user(conn, user["id"], totp_pending=crypto.encrypt(settings, secret))
    uri = totp.provisioning_uri(secret, user["email"])
    return TotpEnrolment(otpauth_uri=uri, secret=secret, qr_svg=totp.qr_svg(uri))


def confirm_totp(
    conn: psycopg.Connection, settings: Settings, principal: Principal, code: str
) -> list[str]:
    """Activate the pending second factor with a valid code; the recovery codes."""
    user = _caller_row(conn, principal)
    if user["totp_pending"] is None:
        raise IdentityError(409, "no enrolment in progress: POST /auth/totp/enrol first")
    secret = crypto.decrypt(settings, bytes(user["totp_pending"]))
    step = totp.accepted_step(secret, code, last_step=None)
    if step is None:
        raise IdentityError(422, "wrong TOTP code: check the authenticator app's clock")
    codes = totp.new_recovery_codes()
    repository.update_user(
        conn, user["id"], totp_secret=bytes(user["totp_pending"]), totp_pending=None,
        totp_last_step=step, recovery_codes=[tokens.keyed_hash(settings, c) for c in codes],
    )  # fmt: skip
    audit.record(conn, principal.actor(), "auth.totp.enrol", target=user["email"])
    return codes


def change_password(conn: psycopg.Connection, principal: Principal, change: PasswordChange) -> None:
    """Change one's password; every token and session issued before ends."""
    user = _caller_row(conn, principal)
    if not passwords.verify_password(user["password_hash"], change.current_password):
        audit.record(
            conn, principal.actor(), "auth.password", target=user["email"], outcome="failure",
            details={"reason": "wrong_current_password"},
        )  # fmt: skip
        conn.commit()
        raise IdentityError(403, "the current password is wrong")
    try:
        passwords.check_policy(change.new_password, email=user["email"])
    except passwords.WeakPassword as exc:
        raise IdentityError(422, str(exc)) from None
    repository.update_user(
        conn, user["id"], password_hash=passwords.hash_password(change.new_password),
        password_changed_at=_now(),
    )  # fmt: skip
    repository.revoke_user_sessions(conn, user["id"])
    audit.record(conn, principal.actor(), "auth.password", target=user["email"])


def set_password(conn: psycopg.Connection, actor: audit.Actor, email: str, password: str) -> None:
    """The operator sets a user's password (a user imported from another instance, a lost
    password); the user's sessions and tokens end, and a lockout is lifted."""
    user = repository.user_by_email(conn, email.strip().lower())
    if user is None:
        raise IdentityError(404, f"no user {email}")
    try:
        passwords.check_policy(password, email=user["email"])
    except passwords.WeakPassword as exc:
        raise IdentityError(422, str(exc)) from None
    repository.update_user(
        conn, user["id"], password_hash=passwords.hash_password(password),
        password_changed_at=_now(), failed_logins=0, locked_until=None,
    )  # fmt: skip
    repository.revoke_user_sessions(conn, user["id"])
    audit.record(conn, actor, "auth.password.set", target=user["email"])


# users


def _check_assignable(principal: Principal, roles: list[str], grants: list[str]) -> None:
    unknown_roles = [r for r in roles if r not in ROLES]
    if unknown_roles:
        raise IdentityError(422, f"unknown role(s): {', '.join(unknown_roles)}")
    if "platform_admin" in roles:
        raise IdentityError(
            403, "platform administrators are created with `civicsense user create`"
        )
    if level_of(roles) > principal.level:
        raise IdentityError(403, "you can give roles at or below your own level only")
    unknown = [p for p in grants if p not in PERMISSIONS]
    if unknown:
        raise IdentityError(422, f"unknown permission(s): {', '.join(unknown)}")
    beyond = [p for p in grants if p not in principal.permissions]
    if beyond:
        raise IdentityError(403, f"you cannot grant what you do not hold: {', '.join(beyond)}")


def user_view(user: dict[str, Any]) -> dict[str, Any]:
    """A user row as UserRead expects it (no hash, no secret)."""
    return {
        "id": user["id"],
        "tenant_id": user["tenant_id"],
        "email": user["email"],
        "display_name": user["display_name"],
        "roles": list(user["roles"]),
        "permissions": list(user["grants"]),
        "active": user["active"],
        "totp_enabled": user["totp_secret"] is not None,
        "created_at": user["created_at"],
        "last_login_at": user["last_login_at"],
    }


def create_user(
    conn: psycopg.Connection,
    actor: Actor,
    *,
    tenant_id: int | None,
    data: UserCreate,
    principal: Principal | None = None,
) -> dict[str, Any]:
    """A new user of `tenant_id`; `principal` (an API caller) limits what it may give."""
    if principal is not None:
        _check_assignable(principal, data.roles, data.permissions)
    else:
        unknown = [r for r in data.roles if r not in ROLES]
        unknown += [p for p in data.permissions if p not in PERMISSIONS]
        if unknown:
            raise IdentityError(422, f"unknown role or permission: {', '.join(unknown)}")
    if (tenant_id is None) != ("platform_admin" in data.roles):
        raise IdentityError(
            422, "platform administrators belong to no tenant, every other user to one"
        )
    try:
        passwords.check_policy(data.password, email=data.email)
    except passwords.WeakPassword as exc:
        raise IdentityError(422, str(exc)) from None
    try:
        with conn.transaction():
            user_id = repository.insert_user(
                conn, tenant_id=tenant_id, email=data.email, display_name=data.display_name,
                password_hash=passwords.hash_password(data.password),
            )  # fmt: skip
    except psycopg.errors.UniqueViolation:
        raise IdentityError(409, f"{data.email} already has an account") from None
    repository.set_roles(conn, user_id, tenant_id, sorted(set(data.roles)))
    repository.set_grants(conn, user_id, tenant_id, sorted(set(data.permissions)))
    audit.record(
        conn, actor, "user.create", target=data.email, tenant_id=tenant_id,
        details={"roles": sorted(set(data.roles)), "permissions": sorted(set(data.permissions))},
    )  # fmt: skip
    user = repository.user_by_id(conn, user_id)
    assert user is not None
    return user_view(user)


def get_user(conn: psycopg.Connection, user_id: int) -> dict[str, Any]:
    """A user the connection may see, or 404."""
    user = repository.user_by_id(conn, user_id)
    if user is None:
        raise IdentityError(404, f"no user {user_id}")
    return user


def update_user(
    conn: psycopg.Connection, scope_principal: Principal, actor: Actor, user_id: int,
    changes: UserUpdate,
) -> dict[str, Any]:  # fmt: skip
    """Edit a user at or below the caller's level. A deactivated user's tokens and sessions
    stop working at once: every request checks that the account is active."""
    user = get_user(conn, user_id)
    if level_of(user["roles"]) > scope_principal.level:
        raise IdentityError(403, "this user is above your level")
    if changes.active is False and user["id"] == scope_principal.id:
        raise IdentityError(409, "you cannot deactivate your own account")
    roles = changes.roles if changes.roles is not None else list(user["roles"])
    grants = changes.permissions if changes.permissions is not None else list(user["grants"])
    _check_assignable(scope_principal, roles, grants)
    values: dict[str, Any] = {}
    if "display_name" in changes.model_fields_set:
        values["display_name"] = changes.display_name
    if changes.active is not None:
        values["active"] = changes.active
    if values:
        repository.update_user(conn, user_id, **values)
    if changes.roles is not None:
        repository.set_roles(conn, user_id, user["tenant_id"], sorted(set(roles)))
    if changes.permissions is not None:
        repository.set_grants(conn, user_id, user["tenant_id"], sorted(set(grants)))
    audit.record(
        conn, actor, "user.update", target=user["email"],
        details=changes.model_dump(exclude_unset=True),
    )  # fmt: skip
    return user_view(get_user(conn, user_id))


# API keys and payment providers


def create_api_key(
    conn: psycopg.Connection, principal: Principal, actor: Actor, *, tenant_id: int,
    data: ApiKeyCreate,
) -> dict[str, Any]:  # fmt: skip
    """A new key; the only response that carries the key itself."""
    unknown = [p for p in data.permissions if p not in PERMISSIONS]
    if unknown:
        raise IdentityError(422, f"unknown permission(s): {', '.join(unknown)}")
    beyond = [p for p in data.permissions if p not in principal.permissions]
    if beyond:
        raise IdentityError(403, f"you cannot give a key what you do not hold: {', '.join(beyond)}")
    return issue_api_key(
        conn, actor, tenant_id=tenant_id, name=data.name, permissions=data.permissions,
        created_by=principal.id if principal.kind == "user" else None,
    )  # fmt: skip


def issue_api_key(
    conn: psycopg.Connection, actor: Actor, *, tenant_id: int, name: str,
    permissions: list[str], created_by: int | None,
) -> dict[str, Any]:  # fmt: skip
    """Store a new key's hash and audit it; the row plus the key, which is never kept."""
    key, prefix = tokens.new_api_key()
    row = repository.insert_api_key(
        conn, tenant_id=tenant_id, name=name, prefix=prefix,
        secret_hash=tokens.secret_hash(key), permissions=sorted(set(permissions)),
        created_by=created_by,
    )  # fmt: skip
    audit.record(
        conn, actor, "apikey.create", target=f"{name} ({prefix})", tenant_id=tenant_id,
        details={"permissions": row["permissions"]},
    )  # fmt: skip
    return {**row, "key": key}


def revoke_api_key(conn: psycopg.Connection, actor: Actor, key_id: int) -> dict[str, Any]:
    """Revoke a key of the tenant (404 for any other)."""
    row = repository.revoke_api_key(conn, key_id)
    if row is None:
        raise IdentityError(404, f"no API key {key_id}")
    audit.record(conn, actor, "apikey.revoke", target=f"{row['name']} ({row['prefix']})")
    return row


def create_provider(
    conn: psycopg.Connection, settings: Settings, principal: Principal, actor: Actor, *,
    tenant_id: int, data: ProviderCreate,
) -> dict[str, Any]:  # fmt: skip
    """Register a payment provider; the only response that carries its signing secret."""
    secret = tokens.new_secret()
    try:
        with conn.transaction():
            row = repository.insert_provider(
                conn, tenant_id=tenant_id, provider=data.provider,
                secret_encrypted=crypto.encrypt(settings, secret),
                created_by=principal.id if principal.kind == "user" else None,
            )  # fmt: skip
    except psycopg.errors.UniqueViolation:
        raise IdentityError(
            409, f"{data.provider} is already registered: revoke it first to rotate its secret"
        ) from None
    audit.record(conn, actor, "provider.create", target=data.provider)
    return {**row, "signing_secret": secret}


def revoke_provider(conn: psycopg.Connection, actor: Actor, provider_id: int) -> dict[str, Any]:
    """Revoke a provider registration of the tenant (404 for any other)."""
    row = repository.revoke_provider(conn, provider_id)
    if row is None:
        raise IdentityError(404, f"no payment provider registration {provider_id}")
    audit.record(conn, actor, "provider.revoke", target=row["provider"])
    return row
