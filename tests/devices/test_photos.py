"""Installation photos: what is stored is a clean, upright JPEG without the phone's
metadata; anything else is refused and nothing is stored; other towns cannot see it."""

from __future__ import annotations

import io
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import ExifTags, Image

from tests.devices.conftest import Login

DEV_EUI = "70b3d50000000001"
URL = f"/api/v1/devices/{DEV_EUI}/photo"
OWNER = "Jeanne Dupont"


def _phone_photo() -> bytes:
    """A landscape JPEG, red on the left, blue on the right, as a phone held upright stores
    it (EXIF orientation 6: turn 90° clockwise to show it), with GPS, owner and comment."""
    image = Image.new("RGB", (400, 200), "red")
    image.paste("blue", (200, 0, 400, 200))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Artist] = OWNER
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update({
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (45.0, 53.0, 59.9),
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (6.0, 7.0, 45.6),
    })  # fmt: skip
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=f"owner: {OWNER}".encode())
    return out.getvalue()


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _put(client: TestClient, auth: dict[str, str], data: bytes | Iterator[bytes], kind: str):
    return client.put(URL, headers={**auth, "Content-Type": kind}, content=data)


def _stored(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM device_photos").fetchone()[0]  # type: ignore[index]


@pytest.fixture
def device(client: TestClient, tech: dict[str, str]) -> dict:
    body = {"dev_eui": DEV_EUI, "model": "bosch-tps110", "name": "Place A17"}
    response = client.post("/api/v1/devices", headers=tech, json=body)
    assert response.status_code == 201
    return response.json()


@pytest.mark.usefixtures("device")
def test_a_phone_photo_comes_back_upright_without_gps_or_owner(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection
) -> None:
    original = _phone_photo()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    put = _put(client, tech, original, "image/jpeg")
    assert put.status_code == 200, put.text
    assert put.json()["content_type"] == "image/jpeg"
    assert (put.json()["width"], put.json()["height"]) == (200, 400)

    got = client.get(URL, headers=tech)
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    photo = Image.open(io.BytesIO(got.content))
    assert photo.format == "JPEG" and photo.size == (200, 400)
    assert len(photo.getexif()) == 0 and "exif" not in photo.info
    assert "comment" not in photo.info and "xmp" not in photo.info
    assert OWNER.encode() not in got.content and b"PhoneMaker" not in got.content
    red, blue = photo.convert("RGB").getpixel((100, 50)), photo.convert("RGB").getpixel((100, 350))
    assert red[0] > 200 > red[2] and blue[2] > 200 > blue[0], "the red half is on top"

    listed = client.get("/api/v1/devices", headers=tech).json()[0]
    assert listed["has_photo"] is True and listed["photo_uploaded_at"] is not None
    action, details = conn.execute(
        "SELECT action, details FROM audit_log WHERE action LIKE 'device.photo%'"
    ).fetchone()  # type: ignore[misc]
    assert action == "device.photo.upload" and details["uploaded_size"] == len(original)
    assert set(details) == {"uploaded_type", "uploaded_size", "width", "height", "size"}


@pytest.mark.usefixtures("device")
@pytest.mark.parametrize(("fmt", "kind"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_a_large_transparent_image_is_shrunk_and_flattened(
    client: TestClient, tech: dict[str, str], fmt: str, kind: str
) -> None:
    image = Image.new("RGBA", (4096, 1024), (0, 128, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 2048, 1024))
    response = _put(client, tech, _encoded(image, fmt), kind)
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (2048, 512)
    photo = Image.open(io.BytesIO(client.get(URL, headers=tech).content)).convert("RGB")
    green, clear = photo.getpixel((500, 256)), photo.getpixel((1500, 256))
    assert green[1] > 100 > green[0] and min(clear) > 240, "transparency becomes white"


@pytest.mark.usefixtures("device")
def test_a_new_photo_replaces_the_old_one(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection
) -> None:
    _put(client, tech, _phone_photo(), "image/jpeg")
    square = _encoded(Image.new("RGB", (64, 64), "white"), "PNG")
    assert _put(client, tech, square, "image/png").json()["width"] == 64
    assert _stored(conn) == 1
    assert Image.open(io.BytesIO(client.get(URL, headers=tech).content)).size == (64, 64)


@pytest.mark.usefixtures("device")
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_a_photo_over_the_limit_is_413_and_the_old_one_stays(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection, streamed: bool
) -> None:
    old = _put(client, tech, _phone_photo(), "image/jpeg").json()
    huge = b"\xff\xd8" + b"\x00" * (8 * 2**20)
    body = iter([huge[i : i + 65536] for i in range(0, len(huge), 65536)]) if streamed else huge
    response = _put(client, tech, body, "image/jpeg")
    assert response.status_code == 413
    assert "8 MiB" in response.json()["detail"]
    assert _stored(conn) == 1
    after = client.get("/api/v1/devices", headers=tech).json()[0]["photo_uploaded_at"]
    assert after == old["uploaded_at"]


@pytest.mark.usefixtures("device")
@pytest.mark.parametrize(
    ("data", "kind", "status", "message"),
    [
        (b"this is a text file, not a picture\n", "image/png", 422, "not a JPEG, PNG or WebP"),
        (_encoded(Image.new("RGB", (8, 8)), "PNG"), "image/jpeg", 422, "PNG image, not image/jpeg"),
        (_phone_photo()[:-600], "image/jpeg", 422, "damaged or truncated"),
        (b"", "image/jpeg", 422, "empty"),
        (_phone_photo(), "text/plain", 415, "image/jpeg, image/png, image/webp"),
        (_encoded(Image.new("RGB", (8, 8)), "GIF"), "image/gif", 415, "not accepted"),
    ],
    ids=["text-as-png", "png-as-jpeg", "truncated", "empty", "text-plain", "gif"],
)
def test_what_is_not_an_accepted_image_is_refused_and_nothing_is_stored(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection,
    data: bytes, kind: str, status: int, message: str,
) -> None:  # fmt: skip
    response = _put(client, tech, data, kind)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert _stored(conn) == 0
    assert client.get(URL, headers=tech).status_code == 404


@pytest.mark.usefixtures("device")
def test_another_town_cannot_see_or_touch_it_and_a_viewer_only_sees_it(
    client: TestClient, tech: dict[str, str], login: Login, conn: psycopg.Connection
) -> None:
    _put(client, tech, _phone_photo(), "image/jpeg")
    lyon = login("tech@lyon.fr")
    assert client.get(URL, headers=lyon).status_code == 404
    assert _put(client, lyon, _phone_photo(), "image/jpeg").status_code == 404
    assert client.delete(URL, headers=lyon).status_code == 404
    viewer = login("viewer@annecy.fr")
    assert client.get(URL, headers=viewer).status_code == 200
    assert client.delete(URL, headers=viewer).status_code == 403
    assert client.get(URL).status_code == 401
    assert _stored(conn) == 1


@pytest.mark.usefixtures("device")
def test_delete_removes_the_photo_and_is_idempotent(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection
) -> None:
    _put(client, tech, _phone_photo(), "image/jpeg")
    assert client.delete(URL, headers=tech).status_code == 204
    assert client.get(URL, headers=tech).json()["detail"].endswith("has no installation photo")
    assert client.delete(URL, headers=tech).status_code == 204
    assert client.get(f"/api/v1/devices/{DEV_EUI}", headers=tech).json()["has_photo"] is False
    removed = conn.execute(
        "SELECT details->>'removed' FROM audit_log WHERE action = 'device.photo.delete' ORDER BY id"
    ).fetchall()
    assert removed == [("true",), ("false",)]


def test_a_decommissioned_device_keeps_its_photo_as_evidence(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection, device: dict
) -> None:
    _put(client, tech, _phone_photo(), "image/jpeg")
    assert client.delete(f"/api/v1/devices/{DEV_EUI}", headers=tech).status_code == 204
    assert client.get(URL, headers=tech).status_code == 404, "its DevEUI is retired"
    kept = conn.execute("SELECT device_id, width FROM device_photos").fetchall()
    assert kept == [(device["id"], 200)]
    gone = client.get("/api/v1/devices", headers=tech, params={"status": "decommissioned"})
    assert gone.json()[0]["has_photo"] is True
    again = {"dev_eui": DEV_EUI, "model": "bosch-tps110", "name": "Place A17 (remplacé)"}
    assert client.post("/api/v1/devices", headers=tech, json=again).json()["has_photo"] is False
