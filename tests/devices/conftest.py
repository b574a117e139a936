"""What the device API tests share: two towns with a technician each (and a viewer in
annecy), the app, and logins."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from core import tenants
from core.app import create_app
from core.settings import Settings
from tests.kit.identity import PASSWORD, add_user, bearer

Login = Callable[[str], dict[str, str]]


@pytest.fixture
def towns(conn: psycopg.Connection) -> dict[str, int]:
    """annecy and lyon, each with tech@<town>.fr; viewer@annecy.fr."""
    ids = {}
    for slug in ("annecy", "lyon"):
        ids[slug] = tenants.create(conn, tenants.TenantCreate(slug=slug, name=slug.title()))
        add_user(conn, tenant_id=ids[slug], email=f"tech@{slug}.fr", roles=["technician"])
    add_user(conn, tenant_id=ids["annecy"], email="viewer@annecy.fr", roles=["viewer"])
    return ids


@pytest.fixture
def client(settings: Settings, towns: dict[str, int]) -> Iterator[TestClient]:
    """The app, its lifespan running."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def login(client: TestClient) -> Login:
    """email → the Authorization header of that user's fresh access token."""

    def token(email: str) -> dict[str, str]:
        form = {"username": email, "password": PASSWORD}
        return bearer(client.post("/api/v1/auth/token", data=form).json()["access_token"])

    return token


@pytest.fixture
def tech(login: Login) -> dict[str, str]:
    """annecy's technician."""
    return login("tech@annecy.fr")
