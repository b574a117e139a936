"""Property-based fuzzing of the whole API with schemathesis, as a signed-in administrator.

Every operation of the OpenAPI document, but four (below), gets generated requests,
valid and invalid (schemathesis' coverage cases, then Hypothesis fuzzing with a small
dictionary of edge values), sent to the real app with its lifespan running on a migrated
database seeded with tenant lyon, its TOTP-verified tenant administrator, a payment
provider and an API key holding every tenant permission. Each generated request is sent
twice: with the administrator's access token and with the API key. What a client must
never get: a 500, or a 4xx that is not JSON with a `detail`.

One database and one app serve the whole module (a fresh one per operation would cost
more than the fuzzing); before each call, whatever earlier calls did to the callers
themselves (a demoted administrator, a revoked key) is undone. Generation is
derandomized: a run is reproducible, and a failure names the request that caused it.
Edge inputs that made the app fail under other seeds are replayed on every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from psycopg import sql

from core import tenants
from core.app import create_app
from core.db import with_database
from core.identity import repository, service
from core.identity.models import ProviderCreate
from core.identity.permissions import ROLES, role_permissions
from core.identity.principal import user_principal
from tests.conftest import base_settings
from tests.kit.identity import PASSWORD, SYSTEM, add_api_key, add_user, bearer, enable_totp

ADMIN = "admin@lyon.fr"
ADMIN_ROLES = ["tenant_admin"]
TENANT_PERMISSIONS = sorted(role_permissions("tenant_admin"))

# Values that strings and integers are sometimes replaced with: what PostgreSQL refuses
# (NUL, beyond bigint), digits that are not ASCII, SQL and LIKE metacharacters.
EDGE_STRINGS = ["\x00", "a\x00b", "١٢٣٤٥٦", "%", "'", "\\"]
EDGE_INTEGERS = [2**63, 2**31, -(2**63) - 1]

# The document does not depend on the database: built once, without starting the app.
schema = (
    schemathesis.openapi.from_dict(
        create_app(base_settings()).openapi(),
        config=schemathesis.Config.from_dict(
            {
                "dictionaries": {
                    "edge-strings": {"values": EDGE_STRINGS},
                    "edge-integers": {"values": EDGE_INTEGERS},
                },
                "generation": {
                    "dictionaries": {
                        "string": {"dictionary": "edge-strings", "probability": 0.25},
                        "integer": {"dictionary": "edge-integers", "probability": 0.25},
                    }
                },
            }
        ),
    )
    .exclude(method="POST", path="/api/v1/auth/password")  # would change the password mid-run
    .exclude(method="DELETE", path="/api/v1/auth/session")  # would log the caller out
    .exclude(method="POST", path="/api/v1/ingest/chirpstack")  # its own token and tests
    .exclude(method="GET", path="/api/v1/parking/bays/events")  # an endless stream
    .exclude(method="GET", path="/api/v1/ready")  # 503 until a job ran: test_observability
)
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)

# Role and permission names are free strings in the document: with generated names only,
# every user or key creation would stop at "unknown role". Half the bodies get names a
# tenant administrator may give, so that creations reach the database.
_NAMES = {"roles": sorted(ROLES.keys() - {"platform_admin"}), "permissions": TENANT_PERMISSIONS}


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The body as generated, or with real role and permission names (same list lengths)."""
    if not isinstance(body, dict):
        return st.just(body)
    sizes = {
        name: len(value)
        for name, value in body.items()
        if name in _NAMES and isinstance(value, list) and all(isinstance(v, str) for v in value)
    }
    if not sizes:
        return st.just(body)
    real = st.fixed_dictionaries(
        {
            name: st.lists(st.sampled_from(_NAMES[name]), min_size=size, max_size=size)
            for name, size in sizes.items()
        }
    )
    return st.one_of(st.just(body), real.map(lambda names: {**body, **names}))


@dataclass
class Api:
    """The running app and its two callers: lyon's administrator and API key."""

    client: TestClient
    conn: psycopg.Connection
    tenant_id: int
    admin_id: int
    key_id: int
    callers: dict[str, dict[str, str]]

    def restore_callers(self) -> None:
        """Full rights again for both callers, whatever the previous calls changed."""
        repository.set_roles(self.conn, self.admin_id, self.tenant_id, ADMIN_ROLES)
        repository.set_grants(self.conn, self.admin_id, self.tenant_id, [])
        repository.update_user(self.conn, self.admin_id, active=True)
        self.conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE id = %s", (self.key_id,))


@pytest.fixture(scope="module")
def fuzz_database_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh migrated database for this module's calls."""
    name = f"cs_fuzz_{uuid.uuid4().hex[:12]}"
    template = urlsplit(template_url).path.lstrip("/")
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    yield with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def api(fuzz_database_url: str) -> Iterator[Api]:
    """The app with its lifespan running on the seeded database; the administrator logged
    in with password and current TOTP code."""
    # the per-address login throttle would turn most generated logins into 429s
    settings = base_settings(database_url=fuzz_database_url, login_max_failures_per_source=10**6)
    with psycopg.connect(fuzz_database_url, autocommit=True) as conn:
        lyon = tenants.create(conn, tenants.TenantCreate(slug="lyon", name="Ville de Lyon"))
        admin = add_user(conn, tenant_id=lyon, email=ADMIN, roles=ADMIN_ROLES)
        authenticator = enable_totp(conn, settings, admin["id"])
        admin_row = repository.user_by_id(conn, admin["id"])
        assert admin_row is not None
        service.create_provider(
            conn, settings, user_principal(admin_row), SYSTEM, tenant_id=lyon,
            data=ProviderCreate(provider="payfip"),
        )  # fmt: skip
        key = add_api_key(conn, tenant_id=lyon, permissions=TENANT_PERMISSIONS)
        key_row = conn.execute("SELECT id FROM api_keys").fetchone()
        assert key_row is not None
        with TestClient(create_app(settings)) as client:
            login = client.post(
                "/api/v1/auth/token",
                data={"username": ADMIN, "password": PASSWORD, "otp": authenticator.now()},
            )
            assert login.status_code == 200, login.text
            assert login.json()["scope"] == "full"
            callers = {"admin": bearer(login.json()["access_token"]), "api key": bearer(key)}
            for auth in callers.values():
                me = client.get("/api/v1/auth/me", headers=auth)
                assert me.status_code == 200 and "users:manage" in me.json()["permissions"]
            yield Api(client, conn, lyon, admin["id"], key_row[0], callers)


def _request(client: TestClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """The app's response; an exception the app raised is the 500 a client would get."""
    try:
        return client.request(method, url, follow_redirects=False, **kwargs)
    except Exception as exc:
        sent = {k: v for k, v in kwargs.items() if v and k != "headers"}
        raise AssertionError(f"{method} {url} {sent} -> 500 ({exc!r})") from exc


def _assert_handled(response: httpx.Response, caller: str) -> None:
    """No server error; a refusal says why, as JSON."""
    sent = f"{response.request.method} {response.request.url} as {caller}"
    assert response.status_code < 500, f"{sent} -> {response.status_code}\n{response.text[:2000]}"
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", "")
        assert content_type.startswith("application/json"), f"{sent}: {content_type}"
        body = response.json()
        assert isinstance(body, dict) and body.get("detail"), f"{sent}: {body!r}"


def _send(client: TestClient, case: schemathesis.Case, auth: dict[str, str]) -> httpx.Response:
    """The generated request, with the caller's Authorization header, through the app."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=auth)
    method, url = kwargs.pop("method"), kwargs.pop("url")
    # the only cookie in the document is the session cookie, ignored when a bearer is sent
    kwargs.pop("cookies", None)
    data = kwargs.pop("data", None)
    if isinstance(data, str | bytes):
        kwargs["content"] = data
    elif data is not None:
        kwargs["data"] = data
    for requests_only in ("allow_redirects", "verify", "timeout", "auth"):
        kwargs.pop(requests_only, None)
    return _request(client, method, url, **kwargs)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(case: schemathesis.Case, api: Api) -> None:
    for caller, auth in api.callers.items():
        api.restore_callers()
        _assert_handled(_send(api.client, case, auth), caller)


# Edge inputs the fuzzing above reaches only with some seeds, replayed on every run.
EDGE_REQUESTS = [
    pytest.param(
        "POST", "/api/v1/auth/token", {"data": {"username": "a\x00@lyon.fr", "password": "x"}},
        id="login-nul-in-username",
    ),
    pytest.param(
        "POST", "/api/v1/auth/session", {"data": {"username": "a\x00@lyon.fr", "password": "x"}},
        id="session-nul-in-username",
    ),
    pytest.param(
        "POST", "/api/v1/auth/token",
        {"data": {"username": ADMIN, "password": PASSWORD, "otp": "١٢٣٤٥٦"}},
        id="login-otp-arabic-indic-digits",
    ),
    pytest.param("GET", f"/api/v1/audit?before_id={2**63}", {}, id="audit-before-id-beyond-bigint"),
    pytest.param("GET", "/api/v1/audit?action=%00", {}, id="audit-nul-in-action"),
    pytest.param("GET", "/api/v1/audit?actor=%00", {}, id="audit-nul-in-actor"),
    pytest.param("GET", "/api/v1/tenants/a%00b", {}, id="tenant-nul-in-slug"),
    pytest.param(
        "POST", "/api/v1/users",
        {"json": {"email": "a\x00b@lyon.fr", "password": "a long enough password",
                  "roles": ["viewer"]}},
        id="user-nul-in-email",
    ),
    pytest.param(
        "POST", "/api/v1/users",
        {"json": {"email": "nul@lyon.fr", "display_name": "a\x00b",
                  "password": "a long enough password", "roles": ["viewer"]}},
        id="user-nul-in-display-name",
    ),
    pytest.param(
        "PATCH", "/api/v1/users/{admin_id}", {"json": {"display_name": "a\x00b"}},
        id="user-update-nul-in-display-name",
    ),
    pytest.param(
        "POST", "/api/v1/api-keys", {"json": {"name": "a\x00b", "permissions": ["users:read"]}},
        id="api-key-nul-in-name",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs"), EDGE_REQUESTS)
def test_edge_inputs_get_no_server_error(
    api: Api, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    api.restore_callers()
    url = path.format(admin_id=api.admin_id)
    response = _request(api.client, method, url, headers=api.callers["admin"], **kwargs)
    _assert_handled(response, "admin")
