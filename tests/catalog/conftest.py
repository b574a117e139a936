"""What the catalogue tests share: a valid solution body, an operator and a buyer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core import tenants
from core.app import create_app
from core.settings import Settings
from tests.kit.identity import PASSWORD, add_user, bearer, enable_totp

CATALOG = "/api/v1/catalog"


def solution_body(slug: str = "fuites-ecoles", **changes: Any) -> dict[str, Any]:
    """A valid new solution: leak detection with two price lines."""
    body: dict[str, Any] = {
        "slug": slug,
        "domain": "leak",
        "name_fr": "Détection de fuites dans les écoles",
        "name_en": "Leak detection in schools",
        "description_fr": "Détecteurs de fuite sous les chaudières des écoles.",
        "description_en": "Leak detectors under school boilers.",
        "device_models": [{"model": "milesight-em300-sld", "quantity": 10}],
        "rule_templates": ["leak", "device-silent"],
        "price_lines": [
            {"code": "detecteur", "label_fr": "Détecteur EM300-SLD", "label_en": "EM300-SLD",
             "kind": "hardware", "unit": "device", "unit_price": "79.00", "vat_rate": "20",
             "device_model": "milesight-em300-sld", "typical_quantity": "10"},
            {"code": "pose", "label_fr": "Pose, par jour", "label_en": "Installation, per day",
             "kind": "service", "unit": "day", "unit_price": "620.00", "vat_rate": "20",
             "complexity": "standard"},
        ],
    }  # fmt: skip
    body.update(changes)
    return body


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app, its lifespan running."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def people(conn: psycopg.Connection, settings: Settings, client: TestClient) -> dict[str, dict]:
    """Logged-in headers: the operator (platform_admin, TOTP), annecy's buyer and admin."""
    annecy = tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))
    users = {
        "operator": (None, "platform_admin"),
        "buyer": (annecy, "buyer"),
        "tenant_admin": (annecy, "tenant_admin"),
    }
    headers = {}
    for name, (tenant_id, role) in users.items():
        email = f"{name}@example.fr"
        user = add_user(conn, tenant_id=tenant_id, email=email, roles=[role])
        form = {"username": email, "password": PASSWORD}
        if role in ("platform_admin", "tenant_admin"):
            form["otp"] = enable_totp(conn, settings, user["id"]).now()
        response = client.post("/api/v1/auth/token", data=form)
        assert response.status_code == 200, response.text
        headers[name] = bearer(response.json()["access_token"])
    return headers
