"""An enforcement action's photo: stored as a clean JPEG without the phone's metadata,
once (it is evidence: never replaced, never deleted by the application), only for the
agent's own town, with an audit entry that identifies it without holding it."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import ExifTags, Image
from psycopg import sql

from core.app import create_app
from core.db import APP_ROLE
from core.settings import Settings
from tests.kit.identity import PASSWORD, add_user, bearer
from tests.kit.parking import ALWAYS, Town, parking_town

ACTIONS = "/api/v1/parking/enforcement/actions"
LIMIT = 256 * 1024


def _gps_photo() -> bytes:
    """A phone's JPEG: the place it was taken in EXIF GPS, the phone in EXIF Make."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (45.0, 53.0, 59.9),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (6.0, 7.0, 45.6),
    })  # fmt: skip
    out = io.BytesIO()
    Image.new("RGB", (640, 480), "silver").save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def town(conn: psycopg.Connection, settings: Settings) -> Town:
    """annecy (with its agent) and lyon (with its own), one parking zone each."""
    annecy = parking_town(conn, settings, bays=2, zone={"hours": ALWAYS})
    lyon = parking_town(conn, settings, slug="lyon", bays=1, eui_prefix="70b3d6")
    for slug, tenant_id in (("annecy", annecy.tenant_id), ("lyon", lyon.tenant_id)):
        add_user(conn, tenant_id=tenant_id, email=f"agent@{slug}.fr", roles=["enforcement_agent"])
    return annecy


@pytest.fixture
def client(settings: Settings, town: Town) -> Iterator[TestClient]:
    small = settings.model_copy(update={"photo_max_bytes": LIMIT})
    with TestClient(create_app(small)) as test_client:
        yield test_client


def _login(client: TestClient, email: str) -> dict[str, str]:
    form = {"username": email, "password": PASSWORD}
    return bearer(client.post("/api/v1/auth/token", data=form).json()["access_token"])


@pytest.fixture
def agent(client: TestClient) -> dict[str, str]:
    return _login(client, "agent@annecy.fr")


@pytest.fixture
def action_id(client: TestClient, agent: dict[str, str]) -> int:
    """An FPS recorded by annecy's agent, without a photo."""
    fps = {"kind": "fps", "bay": "B1", "plate": "AB-123-CD", "amount": "35.00"}
    created = client.post(ACTIONS, headers=agent, json=fps)
    assert created.status_code == 201, created.text
    assert created.json()["has_photo"] is False
    return int(created.json()["id"])


def _put(
    client: TestClient, auth: dict[str, str], action: int, data: bytes, kind: str = "image/jpeg"
) -> Response:
    return client.put(f"{ACTIONS}/{action}/photo", headers={**auth, "Content-Type": kind},
                      content=data)  # fmt: skip


def _stored(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM enforcement_action_photos").fetchone()[0]  # type: ignore[index]


def _audited(conn: psycopg.Connection) -> list[tuple[str, str | None, dict]]:
    return conn.execute(
        "SELECT actor, target, details FROM audit_log"
        " WHERE action = 'parking.enforcement.photo' ORDER BY id"
    ).fetchall()


def test_a_phone_photo_is_kept_without_gps_served_back_and_audited_by_its_digest(
    client: TestClient, agent: dict[str, str], action_id: int, conn: psycopg.Connection
) -> None:
    original = _gps_photo()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    put = _put(client, agent, action_id, original)
    assert put.status_code == 200, put.text
    stored = put.json()
    assert (stored["action_id"], stored["width"], stored["height"]) == (action_id, 640, 480)
    assert stored["content_type"] == "image/jpeg" and stored["uploaded_by"] == "agent@annecy.fr"

    got = client.get(f"{ACTIONS}/{action_id}/photo", headers=agent)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    photo = Image.open(io.BytesIO(got.content))
    assert photo.format == "JPEG" and photo.size == (640, 480)
    assert len(photo.getexif()) == 0 and "exif" not in photo.info
    assert b"PhoneMaker" not in got.content
    assert hashlib.sha256(got.content).hexdigest() == stored["sha256"]
    assert stored["size"] == len(got.content)

    listed = client.get(ACTIONS, headers=agent).json()
    assert [(a["id"], a["has_photo"]) for a in listed] == [(action_id, True)]
    [(actor, target, details)] = _audited(conn)
    assert (actor, target, details["action_id"]) == ("agent@annecy.fr", "B1", action_id)
    assert details["sha256"] == stored["sha256"], "the audit entry identifies the evidence"
    assert set(details) == {"action_id", "uploaded_type", "uploaded_size", "width", "height",
                            "size", "sha256"}, "and does not hold its bytes"  # fmt: skip
    assert details["uploaded_size"] == len(original)


@pytest.mark.parametrize(
    ("data", "kind", "status", "message"),
    [
        (_gps_photo(), "text/plain", 415, "image/jpeg, image/png, image/webp"),
        (_png(), "image/jpeg", 422, "PNG image, not image/jpeg"),
        (b"this is a text file, not a picture\n", "image/png", 422, "not a JPEG, PNG or WebP"),
        (b"", "image/jpeg", 422, "empty"),
        (b"\xff\xd8" + b"\x00" * LIMIT, "image/jpeg", 413, "larger than 262,144 bytes"),
    ],
    ids=["text-plain", "png-as-jpeg", "not-an-image", "empty", "too-large"],
)
def test_what_is_not_an_accepted_photo_is_refused_and_leaves_room_for_one(
    client: TestClient, agent: dict[str, str], action_id: int, conn: psycopg.Connection,
    data: bytes, kind: str, status: int, message: str,
) -> None:  # fmt: skip
    response = _put(client, agent, action_id, data, kind)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert _stored(conn) == 0 and _audited(conn) == []
    assert client.get(f"{ACTIONS}/{action_id}/photo", headers=agent).status_code == 404
    assert client.get(ACTIONS, headers=agent).json()[0]["has_photo"] is False
    assert _put(client, agent, action_id, _png(), "image/png").status_code == 200


def test_a_second_photo_is_refused_and_the_first_one_stays(
    client: TestClient, agent: dict[str, str], action_id: int, conn: psycopg.Connection
) -> None:
    first = _put(client, agent, action_id, _gps_photo()).json()
    second = _put(client, agent, action_id, _png((32, 32)), "image/png")
    assert second.status_code == 409
    assert "already has its photo" in second.json()["detail"]
    served = client.get(f"{ACTIONS}/{action_id}/photo", headers=agent).content
    assert hashlib.sha256(served).hexdigest() == first["sha256"]
    assert _stored(conn) == 1 and len(_audited(conn)) == 1


def test_another_towns_agent_gets_404_and_changes_nothing(
    client: TestClient, agent: dict[str, str], action_id: int, conn: psycopg.Connection
) -> None:
    lyon = _login(client, "agent@lyon.fr")
    assert _put(client, lyon, action_id, _gps_photo()).status_code == 404
    assert _stored(conn) == 0
    _put(client, agent, action_id, _gps_photo())
    assert client.get(f"{ACTIONS}/{action_id}/photo", headers=lyon).status_code == 404
    assert _put(client, lyon, action_id, _png(), "image/png").status_code == 404
    assert _put(client, agent, action_id + 1000, _png(), "image/png").status_code == 404
    assert client.get(f"{ACTIONS}/{action_id}/photo").status_code == 401
    assert _stored(conn) == 1


def test_the_application_cannot_replace_or_delete_a_photo_or_edit_its_action(
    client: TestClient, agent: dict[str, str], action_id: int, database_url: str, town: Town
) -> None:
    assert _put(client, agent, action_id, _gps_photo()).status_code == 200
    with psycopg.connect(database_url) as app:
        app.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        app.execute("SELECT set_config('civicsense.tenant_id', %s, false)", (str(town.tenant_id),))
        assert app.execute("SELECT count(*) FROM enforcement_action_photos").fetchone() == (1,)
        for statement in (
            "UPDATE enforcement_action_photos SET uploaded_by = 'someone else'",
            "DELETE FROM enforcement_action_photos",
            "TRUNCATE enforcement_action_photos",
            "UPDATE enforcement_actions SET amount = 0",  # nor the action it shows
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), app.transaction():
                app.execute(statement)  # type: ignore[arg-type]
