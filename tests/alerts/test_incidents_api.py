"""Incidents through the API: who may progress them (the assignee or a manager, never a
viewer), the workflow's refusals, re-qualification with its reason, the SLA clocks a
reader sees, attachments, the requester's privacy and the town's public status list."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import ExifTags, Image

from alerts import attachments
from alerts.workflow import Transition
from core.app import create_app
from core.settings import Settings
from tests.kit.identity import add_api_key, bearer
from tests.kit.incidents import incident_town, login, opened, user_id

API = "/api/v1/incidents"
PHOTO_LIMIT = 64 * 1024
REQUEST: dict[str, Any] = {
    "title": "Lampadaire éteint rue du Lac", "incident_class": "mineur", "source": "request",
    "category": "lighting", "site": "Rue du Lac", "lat": 45.9, "lon": 6.12,
    "requester": {"name": "Jeanne Martin", "email": "Jeanne.Martin@example.org",
                  "phone": "+33 6 12 34 56 78", "kind": "resident"},
}  # fmt: skip
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    """annecy (24/7 service levels) with its staff, and lyon with its own."""
    incident_town(conn, "lyon")
    return incident_town(conn, "annecy")


@pytest.fixture
def client(settings: Settings, town: int) -> Iterator[TestClient]:
    small = settings.model_copy(update={"photo_max_bytes": PHOTO_LIMIT})
    with TestClient(create_app(small)) as test_client:
        yield test_client


@pytest.fixture
def staff(client: TestClient) -> dict[str, dict[str, str]]:
    """annecy's people logged in, by e-mail local part (and lyon's manager)."""
    people = {name: login(client, f"{name}@annecy.fr") for name in ("tech", "tech2", "viewer")}
    return {**people, "manager": login(client, "manager@annecy.fr"),
            "lyon": login(client, "manager@lyon.fr")}  # fmt: skip


def _open(client: TestClient, auth: dict[str, str], **changes: Any) -> dict[str, Any]:
    body = {"title": "Capteur de fuite muet", "incident_class": "majeur", **changes}
    response = client.post(API, headers=auth, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _step(client: TestClient, auth: dict[str, str], incident: int, name: str) -> Response:
    return client.post(f"{API}/{incident}/transitions", headers=auth, json={"transition": name})


def _audited(conn: psycopg.Connection, action: str) -> list[tuple[str, dict[str, Any]]]:
    return conn.execute(
        "SELECT actor, details FROM audit_log WHERE action = %s ORDER BY id", (action,)
    ).fetchall()


def test_the_assigned_technician_progresses_the_incident_others_get_403(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection
) -> None:
    incident = _open(client, staff["manager"])["id"]
    tech = user_id(conn, "tech@annecy.fr")
    assigned = client.post(f"{API}/{incident}/assign", headers=staff["manager"],
                           json={"assignee_id": tech})  # fmt: skip
    assert assigned.status_code == 200 and assigned.json()["assignee_id"] == tech

    for someone in ("tech2", "viewer"):
        refused = _step(client, staff[someone], incident, "acknowledge")
        assert refused.status_code == 403, someone
    assert client.post(f"{API}/{incident}/assign", headers=staff["tech"],
                       json={"assignee_id": tech}).status_code == 403  # fmt: skip
    assert _step(client, staff["lyon"], incident, "acknowledge").status_code == 404

    for name, state in (("acknowledge", "acknowledged"), ("start", "in_progress"),
                        ("resolve", "resolved")):  # fmt: skip
        response = _step(client, staff["tech"], incident, name)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state
    shown = response.json()
    assert shown["clocks"]["gti"]["state"] == "met" and shown["clocks"]["gtr"]["state"] == "met"
    assert shown["allowed_transitions"] == ["reopen", "close"], "auto_close is not offered"

    history = client.get(f"{API}/{incident}/events", headers=staff["viewer"]).json()
    assert [(e["kind"], e["transition"], e["actor"]) for e in history] == [
        ("opened", None, "manager@annecy.fr"),
        ("assigned", None, "manager@annecy.fr"),
        ("transition", "acknowledge", "tech@annecy.fr"),
        ("transition", "start", "tech@annecy.fr"),
        ("transition", "resolve", "tech@annecy.fr"),
    ]
    audited = _audited(conn, "incidents.transition")
    steps = [(actor, d["transition"], d["to"]) for actor, d in audited]
    assert steps[-1] == ("tech@annecy.fr", "resolve", "resolved")
    assert len(steps) == 3, "refused attempts change nothing"


def test_a_manager_progresses_any_incident_but_not_past_the_workflow(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    incident = _open(client, staff["tech"])["id"]  # a technician may open one
    illegal = _step(client, staff["manager"], incident, "resolve")
    assert illegal.status_code == 409
    assert "cannot resolve an incident from new" in illegal.json()["detail"]
    automatic = _step(client, staff["manager"], incident, "auto_close")
    assert automatic.status_code == 422 and "scheduler" in str(automatic.json()["detail"])
    assert _step(client, staff["manager"], incident, "start").status_code == 200
    assert _step(client, staff["manager"], incident, "resolve").status_code == 200
    closed = _step(client, staff["manager"], incident, "close")
    assert closed.json()["state"] == "closed" and closed.json()["closed_at"] is not None
    again = client.post(f"{API}/{incident}/comments", headers=staff["manager"],
                        json={"body": "Encore là ?"})  # fmt: skip
    assert again.status_code == 409 and "closed, which is final" in again.json()["detail"]


def test_requalifying_needs_a_reason_which_history_and_audit_keep(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection
) -> None:
    incident = _open(client, staff["manager"])["id"]
    path = f"{API}/{incident}/requalify"
    without = client.post(path, headers=staff["manager"], json={"incident_class": "bloquant"})
    assert without.status_code == 422
    too_short = {"incident_class": "bloquant", "reason": "  x "}
    assert client.post(path, headers=staff["manager"], json=too_short).status_code == 422
    reason = {"incident_class": "bloquant", "reason": "tout le bâtiment est sans chauffage"}
    assert client.post(path, headers=staff["tech"], json=reason).status_code == 403

    done = client.post(path, headers=staff["manager"], json=reason)
    assert done.status_code == 200, done.text
    shown = done.json()
    assert (shown["incident_class"], shown["priority"]) == ("bloquant", "P0")
    opened_at = datetime.fromisoformat(shown["opened_at"])
    deadline = datetime.fromisoformat(shown["clocks"]["gti"]["deadline"])
    assert deadline - opened_at == timedelta(hours=1), "P0's GTI counts from the opening"
    history = client.get(f"{API}/{incident}/events", headers=staff["viewer"]).json()
    requalified = [e for e in history if e["kind"] == "requalified"]
    assert [(e["body"], e["details"]) for e in requalified] == [(reason["reason"], {
        "from": {"incident_class": "majeur", "priority": "P1"},
        "to": {"incident_class": "bloquant", "priority": "P0"}})]  # fmt: skip
    [(actor, details)] = _audited(conn, "incidents.requalify")
    assert actor == "manager@annecy.fr" and details["reason"] == reason["reason"]


def test_a_p0_opened_two_hours_ago_shows_its_gti_breached(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection, town: int
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    incident = opened(conn, town, start, incident_class="bloquant")
    shown = client.get(f"{API}/{incident}", headers=staff["viewer"]).json()
    gti, gtr = shown["clocks"]["gti"], shown["clocks"]["gtr"]
    assert gti["state"] == "breached" and gtr["state"] == "ok"
    assert gti["deadline"].endswith("Z"), "instants are ISO 8601 UTC"
    assert datetime.fromisoformat(gti["deadline"]) == start + timedelta(hours=1)
    assert -3700 < gti["remaining_seconds"] < -3590
    assert 7100 < gtr["remaining_seconds"] < 7210 and gtr["delay_seconds"] == 4 * 3600
    assert shown["opened_at"].endswith("Z") and shown["priority"] == "P0"


def test_waiting_pauses_the_clock_and_resuming_pushes_its_deadline(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection, town: int
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    steps = ((Transition.START, start + timedelta(minutes=10)),
             (Transition.WAIT, start + timedelta(minutes=50)))  # fmt: skip
    incident = opened(conn, town, start, steps=steps)  # majeur: P1, GTR 12 h
    waiting = client.get(f"{API}/{incident}", headers=staff["viewer"]).json()
    assert waiting["state"] == "waiting" and waiting["gtr_due_at"] is None
    gtr = waiting["clocks"]["gtr"]
    assert gtr["state"] == "paused" and gtr["deadline"] is None
    assert gtr["remaining_seconds"] == 12 * 3600 - 50 * 60, "frozen while waiting"
    assert waiting["clocks"]["gti"]["state"] == "met"

    resumed = _step(client, staff["manager"], incident, "resume").json()
    paused_for = datetime.now(UTC) - (start + timedelta(minutes=50))
    deadline = datetime.fromisoformat(resumed["clocks"]["gtr"]["deadline"])
    expected = start + timedelta(hours=12) + paused_for
    assert abs(deadline - expected) < timedelta(seconds=30)
    assert datetime.fromisoformat(resumed["gtr_due_at"]) == deadline
    assert resumed["clocks"]["gtr"]["state"] == "ok"


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, "PNG", exif=exif)
    return out.getvalue()


def _attach(client: TestClient, auth: dict[str, str], incident: int, data: bytes,
            kind: str, filename: str | None = None) -> Response:  # fmt: skip
    params = {"filename": filename} if filename else {}
    return client.post(f"{API}/{incident}/attachments", headers={**auth, "Content-Type": kind},
                       content=data, params=params)  # fmt: skip


def test_a_photo_and_a_pdf_are_stored_served_and_recorded(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection
) -> None:
    incident = _open(client, staff["manager"])["id"]
    photo = _attach(client, staff["tech"], incident, _png(), "image/png", "compteur.png")
    assert photo.status_code == 201, photo.text
    stored = photo.json()
    assert (stored["content_type"], stored["width"], stored["height"]) == ("image/jpeg", 64, 48)
    served = client.get(f"{API}/{incident}/attachments/{stored['id']}", headers=staff["viewer"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert hashlib.sha256(served.content).hexdigest() == stored["sha256"]
    assert b"PhoneMaker" not in served.content
    assert Image.open(io.BytesIO(served.content)).size == (64, 48)

    document = _attach(client, staff["tech"], incident, PDF, "application/pdf", "rapport.pdf")
    assert document.status_code == 201, document.text
    got = client.get(f"{API}/{incident}/attachments/{document.json()['id']}",
                     headers=staff["viewer"])  # fmt: skip
    assert got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''rapport.pdf"
    assert document.json()["sha256"] == hashlib.sha256(PDF).hexdigest()

    shown = client.get(f"{API}/{incident}", headers=staff["viewer"]).json()
    assert [a["filename"] for a in shown["attachments"]] == ["compteur.png", "rapport.pdf"]
    history = client.get(f"{API}/{incident}/events", headers=staff["viewer"]).json()
    recorded = [e["details"]["sha256"] for e in history if e["kind"] == "attachment"]
    assert recorded == [stored["sha256"], document.json()["sha256"]]
    audited = [d["sha256"] for _, d in _audited(conn, "incidents.attach")]
    assert audited == recorded
    assert _attach(client, staff["viewer"], incident, PDF, "application/pdf").status_code == 403
    lyon = client.get(f"{API}/{incident}/attachments/{stored['id']}", headers=staff["lyon"])
    assert lyon.status_code == 404


@pytest.mark.parametrize(
    ("data", "kind", "status", "message"),
    [
        (b"plain words", "text/plain", 415, "application/pdf"),
        (b"\x89PNG" + b"\x00" * PHOTO_LIMIT, "image/png", 413, "larger than 65,536 bytes"),
        (b"\x00" * (attachments.DOCUMENT_MAX_BYTES + 1), "application/pdf", 413, "10 MiB"),
        (b"MZ\x90\x00 an executable", "application/pdf", 422, "not a PDF document"),
        (PDF[:20], "application/pdf", 422, "truncated"),
        (b"not an image at all", "image/jpeg", 422, "not a JPEG, PNG or WebP"),
    ],
    ids=["text", "photo-too-big", "pdf-too-big", "exe-as-pdf", "truncated-pdf", "not-an-image"],
)
def test_what_is_not_an_accepted_attachment_is_refused(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection,
    data: bytes, kind: str, status: int, message: str,
) -> None:  # fmt: skip
    incident = _open(client, staff["manager"])["id"]
    response = _attach(client, staff["tech"], incident, data, kind)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert conn.execute("SELECT count(*) FROM incident_attachments").fetchone() == (0,)
    assert _audited(conn, "incidents.attach") == []


def test_the_requester_is_kept_from_callers_without_alerts_read_and_from_the_audit(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection, town: int
) -> None:
    integration = bearer(add_api_key(conn, tenant_id=town, permissions=["incidents:manage"]))
    created = client.post(API, headers=integration, json=REQUEST)
    assert created.status_code == 201, created.text
    assert created.json()["requester"] is None
    incident = created.json()["id"]
    assert client.get(f"{API}/{incident}", headers=integration).status_code == 403

    shown = client.get(f"{API}/{incident}", headers=staff["viewer"]).json()
    assert shown["requester"] == {**REQUEST["requester"], "email": "jeanne.martin@example.org"}
    assert shown["source"] == "request" and shown["created_by"] is None
    trail = conn.execute("SELECT details::text FROM audit_log").fetchall()
    history = conn.execute("SELECT details::text, coalesce(body, '') FROM incident_events")
    for text in [*(t for (t,) in trail), *(t for row in history for t in row)]:
        assert "Jeanne" not in text and "12 34" not in text

    no_requester = {key: value for key, value in REQUEST.items() if key != "requester"}
    refused = client.post(API, headers=staff["manager"], json=no_requester)
    assert refused.status_code == 422 and "requester" in refused.text
    alert = client.post(API, headers=staff["manager"], json={**REQUEST, "source": "alert"})
    assert alert.status_code == 422


def test_the_public_list_shows_public_incidents_without_personal_data(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection
) -> None:
    planned = {"planned_start": "2026-12-01T07:00:00Z", "planned_end": "2026-12-01T11:00:00Z"}
    public = _open(client, staff["manager"], **REQUEST, public=True, **planned)
    _open(client, staff["manager"], title="Vol de câble", incident_class="bloquant")
    _open(client, staff["lyon"], title="Inondation à Lyon", public=True)
    refused = client.post(API, headers=staff["tech"], json={**REQUEST, "public": True})
    assert refused.status_code == 403, "publishing is for alerts managers"

    listed = client.get(f"{API}/public/annecy")
    assert listed.status_code == 200 and listed.headers["cache-control"] == "public, max-age=60"
    body = listed.json()
    assert body["town"] == "Annecy"
    assert body["incidents"] == [{
        "title": REQUEST["title"], "category": "lighting", "state": "new", "site": "Rue du Lac",
        "opened_at": public["opened_at"], **planned,
    }]  # fmt: skip
    assert "Jeanne" not in listed.text and "device" not in listed.text

    taken_off = client.patch(f"{API}/{public['id']}", headers=staff["manager"],
                             json={"public": False})  # fmt: skip
    assert taken_off.status_code == 200
    assert taken_off.json()["planned_end"] == planned["planned_end"], "the plan stays"
    assert client.get(f"{API}/public/annecy").json()["incidents"] == []
    assert client.patch(f"{API}/{public['id']}", headers=staff["tech"],
                        json={"public": True}).status_code == 403  # fmt: skip
    assert client.get(f"{API}/public/grenoble").status_code == 404


def test_lists_filter_and_paginate_within_the_town(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection
) -> None:
    first = _open(client, staff["manager"], incident_class="mineur", category="water")["id"]
    second = _open(client, staff["manager"], incident_class="bloquant")["id"]
    third = _open(client, staff["manager"], incident_class="majeur")["id"]
    _open(client, staff["lyon"], incident_class="majeur")
    tech = user_id(conn, "tech@annecy.fr")
    client.post(f"{API}/{third}/assign", headers=staff["manager"], json={"assignee_id": tech})
    for name in ("start", "resolve"):
        _step(client, staff["tech"], third, name)

    def ids(**params: Any) -> list[int]:
        response = client.get(API, headers=staff["viewer"], params=params)
        assert response.status_code == 200, response.text
        return [incident["id"] for incident in response.json()]

    assert ids() == [third, second, first]
    assert ids(limit=2) == [third, second] and ids(limit=2, offset=2) == [first]
    assert ids(priority="P0") == [second] and ids(**{"class": "mineur"}) == [first]
    assert ids(category="water") == [first] and ids(assignee=tech) == [third]
    assert ids(open="true") == [second, first] and ids(state="resolved") == [third]
    assert ids(state=["new", "resolved"]) == [third, second, first]
    assert client.get(API, headers=staff["viewer"], params={"state": "lost"}).status_code == 422
    assert client.get(f"{API}/{first}", headers=staff["lyon"]).status_code == 404


def test_only_active_incident_workers_of_the_town_can_be_assigned(
    client: TestClient, staff: dict[str, dict[str, str]], conn: psycopg.Connection
) -> None:
    incident = _open(client, staff["manager"])["id"]
    for email, message in (("viewer@annecy.fr", "may not work on incidents"),
                           ("tech@lyon.fr", "not an active user of this town")):  # fmt: skip
        response = client.post(f"{API}/{incident}/assign", headers=staff["manager"],
                               json={"assignee_id": user_id(conn, email)})  # fmt: skip
        assert response.status_code == 422 and message in response.json()["detail"]
    assert client.get(f"{API}/{incident}", headers=staff["viewer"]).json()["assignee_id"] is None
