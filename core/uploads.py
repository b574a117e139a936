"""Photo uploads over HTTP, for every route that takes one (a device's installation photo,
an enforcement action's evidence): the body is the image itself (Content-Type image/jpeg,
image/png or image/webp; no multipart), read no further than `photo_max_bytes`, then
cleaned by `images.clean` into the JPEG that is stored and served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request, Response
from pydantic import BaseModel

from . import images
from .images import CleanImage

__all__ = [
    "PHOTO_RESPONSES",
    "UPLOAD_OPENAPI",
    "UPLOAD_RESPONSES",
    "PhotoUpload",
    "StoredPhoto",
    "photo_response",
    "photo_upload",
]

_BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": dict.fromkeys(images.ACCEPTED, _BINARY)}
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "larger than the limit (CIVICSENSE_PHOTO_MAX_BYTES, 8 MiB)"},
    415: {"description": "Content-Type is not image/jpeg, image/png or image/webp"},
}
PHOTO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": _BINARY}, "description": "the photo (JPEG)"}
}


class StoredPhoto(BaseModel):
    """A stored photo, without its bytes."""

    content_type: str
    width: int
    height: int
    size: int
    uploaded_by: str
    uploaded_at: datetime


@dataclass(frozen=True, slots=True)
class PhotoUpload:
    """The uploaded bytes and their declared media type, not yet checked as an image."""

    data: bytes
    declared: str

    def clean(self) -> CleanImage:
        """The upload as the JPEG to store; 422 when it is not a usable image."""
        try:
            return images.clean(self.data, self.declared)
        except images.ImageRejected as exc:
            raise HTTPException(exc.status, exc.detail) from None

    def audit_details(self, image: CleanImage) -> dict[str, Any]:
        """What the audit trail keeps of the upload: types and sizes, never the bytes."""
        return {
            "uploaded_type": self.declared, "uploaded_size": len(self.data),
            "width": image.width, "height": image.height, "size": len(image.data),
        }  # fmt: skip


async def read_limited(request: Request, limit: int, what: str) -> bytes:
    """The body, read no further than `limit` bytes: 413 as soon as it is passed (or
    announced by Content-Length), naming `what` was too big."""
    size_text = f"{limit:,} bytes ({limit / 2**20:g} MiB)"
    too_big = HTTPException(413, f"the {what} is larger than {size_text}: send a smaller one")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def photo_upload(request: Request) -> PhotoUpload:
    """The body, read no further than the size limit: 413 as soon as it is passed; 415
    unless the declared type is accepted. A dependency of the upload routes."""
    try:
        declared = images.media_type(request.headers.get("content-type"))
    except images.ImageRejected as exc:
        raise HTTPException(exc.status, exc.detail) from None
    limit: int = request.app.state.settings.photo_max_bytes
    return PhotoUpload(await read_limited(request, limit, "photo"), declared)


def photo_response(data: bytes, content_type: str) -> Response:
    """A stored photo as the answer: private, never sniffed as anything else."""
    headers = {"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=content_type, headers=headers)
