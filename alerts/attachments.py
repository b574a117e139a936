"""Incident attachments: photos of the site or of the repair, and PDF documents (an
intervention report, a quote). Like the project's other photo routes (`core.uploads`), the
request body is the file itself with its Content-Type, no multipart.

A photo is read no further than CIVICSENSE_PHOTO_MAX_BYTES and re-encoded by `core.images`
into a clean JPEG (EXIF GPS and the phone's identity removed). A document must be a PDF of at
most `DOCUMENT_MAX_BYTES`, checked by its bytes (`%PDF-` at the start, `%%EOF` near the end),
not only by its declared type; it is stored as sent and always served as a download. Rows of
`incident_attachments` are never changed or removed by the application: they record the work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import HTTPException, Query, Request, Response
from psycopg.rows import dict_row

from core import images, uploads

__all__ = [
    "DOCUMENT_MAX_BYTES",
    "DOCUMENT_TYPE",
    "UPLOAD_OPENAPI",
    "AttachmentUpload",
    "StoredFile",
    "attachment_upload",
    "content_of",
    "file_response",
    "listed",
    "store",
]

DOCUMENT_TYPE = "application/pdf"
DOCUMENT_MAX_BYTES = 10 * 2**20
ACCEPTED = (*images.ACCEPTED, DOCUMENT_TYPE)
FILENAME = r"^[^/\\\x00-\x1f\x7f\"]{1,200}$"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": dict.fromkeys(ACCEPTED, _BINARY)}
}

_COLUMNS = """id, incident_id, filename, content_type, size, encode(sha256, 'hex') AS sha256,
              width, height, uploaded_by, uploaded_at"""
_INSERT = f"""
INSERT INTO incident_attachments (tenant_id, incident_id, filename, content_type, bytes, sha256,
                                  size, width, height, uploaded_by)
VALUES (%(tenant_id)s, %(incident_id)s, %(filename)s, %(content_type)s, %(bytes)s,
        sha256(%(bytes)s), %(size)s, %(width)s, %(height)s, %(uploaded_by)s)
RETURNING {_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A checked attachment, as it is stored; `audit` is what the trail keeps of it."""

    data: bytes
    content_type: str
    width: int | None
    height: int | None
    audit: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AttachmentUpload:
    """The uploaded bytes, their declared type and name, not yet checked."""

    data: bytes
    declared: str
    filename: str | None

    @property
    def is_document(self) -> bool:
        """A PDF document rather than a photo."""
        return self.declared == DOCUMENT_TYPE

    def check(self) -> StoredFile:
        """The file to store; 422 when it is not what its type says."""
        if self.is_document:
            return _checked_pdf(self.data)
        photo = uploads.PhotoUpload(self.data, self.declared)
        image = photo.clean()
        return StoredFile(
            image.data, image.content_type, image.width, image.height, photo.audit_details(image)
        )

    def stored_name(self) -> str:
        """The name it is served under: the one given, else a generic one."""
        return self.filename or ("document.pdf" if self.is_document else "photo.jpg")


def _checked_pdf(data: bytes) -> StoredFile:
    if not data:
        raise HTTPException(422, "the body is empty: send the document's bytes")
    if not data.startswith(b"%PDF-"):
        raise HTTPException(422, "the body is not a PDF document (it does not start with %PDF-)")
    if b"%%EOF" not in data[-1024:]:
        raise HTTPException(422, "the PDF document is truncated: no %%EOF marker at its end")
    details = {"uploaded_type": DOCUMENT_TYPE, "uploaded_size": len(data), "size": len(data)}
    return StoredFile(data, DOCUMENT_TYPE, None, None, details)


async def attachment_upload(
    request: Request,
    filename: Annotated[
        str | None, Query(pattern=FILENAME, description="the file's name, shown on download")
    ] = None,
) -> AttachmentUpload:
    """The body, read no further than its type's size limit (413); 415 unless it is a
    JPEG, PNG or WebP photo or a PDF document. A dependency of the upload route."""
    declared = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if declared == DOCUMENT_TYPE:
        data = await _read_document(request)
    else:
        try:
            data = (await uploads.photo_upload(request)).data
        except HTTPException as exc:
            if exc.status_code != 415:
                raise
            shown = declared or "none"
            detail = f"Content-Type {shown} is not accepted: send {', '.join(ACCEPTED)}"
            raise HTTPException(415, detail) from None
    return AttachmentUpload(data, declared, filename)


async def _read_document(request: Request) -> bytes:
    return await uploads.read_limited(request, DOCUMENT_MAX_BYTES, "document")


def store(
    conn: psycopg.Connection, *, tenant_id: int, incident_id: int, filename: str,
    file: StoredFile, uploaded_by: str,
) -> dict[str, Any]:  # fmt: skip
    """Insert the attachment; its description (with its SHA-256, hex)."""
    params = {
        "tenant_id": tenant_id, "incident_id": incident_id, "filename": filename,
        "content_type": file.content_type, "bytes": file.data, "size": len(file.data),
        "width": file.width, "height": file.height, "uploaded_by": uploaded_by,
    }  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_INSERT, params).fetchone()
    assert row is not None
    return row


def listed(conn: psycopg.Connection, tenant_id: int, incident_id: int) -> list[dict[str, Any]]:
    """The incident's attachments, oldest first, without their bytes."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM incident_attachments"
            " WHERE tenant_id = %s AND incident_id = %s ORDER BY id",
            (tenant_id, incident_id),
        ).fetchall()


def content_of(
    conn: psycopg.Connection, tenant_id: int, incident_id: int, attachment_id: int
) -> tuple[bytes, str, str] | None:
    """(bytes, content type, file name) of one of the incident's attachments."""
    row = conn.execute(
        "SELECT bytes, content_type, filename FROM incident_attachments"
        " WHERE tenant_id = %s AND incident_id = %s AND id = %s",
        (tenant_id, incident_id, attachment_id),
    ).fetchone()
    return (bytes(row[0]), str(row[1]), str(row[2])) if row else None


def file_response(data: bytes, content_type: str, filename: str) -> Response:
    """An attachment as the answer: photos shown inline, documents only downloaded (a PDF
    may carry scripts), never sniffed as anything else."""
    response = uploads.photo_response(data, content_type)
    disposition = "attachment" if content_type == DOCUMENT_TYPE else "inline"
    response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(filename)}"
    if content_type == DOCUMENT_TYPE:
        response.headers["Content-Security-Policy"] = "sandbox"
    return response
