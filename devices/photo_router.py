"""A device's installation photo: PUT the image itself as the request body (Content-Type
image/jpeg, image/png or image/webp; no multipart), GET it back, DELETE it.

What is stored, and served, is always a clean JPEG (see `images`): metadata removed, turned
upright, at most 2048 px on its long side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from core import audit

from . import images, photos
from .dependencies import DevEui, Read, Write, live_device
from .photos import PhotoRead

router = APIRouter(prefix="/devices", tags=["devices"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_UPLOAD = {"requestBody": {"required": True, "content": dict.fromkeys(images.ACCEPTED, _BINARY)}}


@dataclass(frozen=True, slots=True)
class _Upload:
    """The uploaded bytes and their declared media type."""

    data: bytes
    declared: str


async def _upload(request: Request) -> _Upload:
    """The body, read no further than the size limit: 413 as soon as it is passed."""
    limit: int = request.app.state.settings.photo_max_bytes
    too_big = HTTPException(
        413, f"the photo is larger than {limit:,} bytes ({limit / 2**20:g} MiB): send a smaller one"
    )
    try:
        declared = images.media_type(request.headers.get("content-type"))
    except images.ImageRejected as exc:
        raise HTTPException(exc.status, exc.detail) from None
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return _Upload(b"".join(chunks), declared)


@router.put(
    "/{dev_eui}/photo", response_model=PhotoRead, openapi_extra=_UPLOAD,
    responses={
        413: {"description": "larger than the limit (CIVICSENSE_PHOTO_MAX_BYTES, 8 MiB)"},
        415: {"description": "Content-Type is not image/jpeg, image/png or image/webp"},
    },
)  # fmt: skip
def put_photo(
    scope: Write, dev_eui: DevEui, upload: Annotated[_Upload, Depends(_upload)]
) -> dict[str, Any]:
    """Store the device's installation photo (replacing the one it had). The body is the
    image itself; it is re-encoded as a JPEG without its metadata (EXIF GPS...)."""
    device = live_device(scope.conn, dev_eui)
    try:
        image = images.clean(upload.data, upload.declared)
    except images.ImageRejected as exc:
        raise HTTPException(exc.status, exc.detail) from None
    row = photos.store(
        scope.conn, tenant_id=scope.tenant_id, device=device, image=image,
        uploaded_by=scope.actor.label,
    )  # fmt: skip
    details = {
        "uploaded_type": upload.declared, "uploaded_size": len(upload.data),
        "width": image.width, "height": image.height, "size": row["size"],
    }  # fmt: skip
    audit.record(scope.conn, scope.actor, "device.photo.upload", target=dev_eui, details=details)
    return row


@router.get(
    "/{dev_eui}/photo", response_class=Response,
    responses={200: {"content": {"image/jpeg": _BINARY}, "description": "the photo (JPEG)"}},
)  # fmt: skip
def get_photo(scope: Read, dev_eui: DevEui) -> Response:
    """The device's installation photo, a JPEG; 404 if it has none."""
    found = photos.image_of(scope.conn, live_device(scope.conn, dev_eui)["id"])
    if found is None:
        raise HTTPException(404, f"device {dev_eui} has no installation photo")
    data, content_type = found
    headers = {"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=content_type, headers=headers)


@router.delete("/{dev_eui}/photo", status_code=status.HTTP_204_NO_CONTENT)
def delete_photo(scope: Write, dev_eui: DevEui) -> Response:
    """Remove the device's installation photo (204 whether or not it had one)."""
    removed = photos.delete(scope.conn, live_device(scope.conn, dev_eui)["id"])
    audit.record(
        scope.conn, scope.actor, "device.photo.delete", target=dev_eui,
        details={"removed": removed},
    )  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)
