"""A device's installation photo: PUT the image itself as the request body (see
`core.uploads`), GET it back, DELETE it.

What is stored, and served, is always a clean JPEG (see `core.images`): metadata removed,
turned upright, at most 2048 px on its long side.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from core import audit, uploads
from core.uploads import PhotoUpload

from . import photos
from .dependencies import DevEui, Read, Write, live_device
from .photos import PhotoRead

router = APIRouter(prefix="/devices", tags=["devices"])


@router.put(
    "/{dev_eui}/photo", response_model=PhotoRead, openapi_extra=uploads.UPLOAD_OPENAPI,
    responses=uploads.UPLOAD_RESPONSES,
)  # fmt: skip
def put_photo(
    scope: Write, dev_eui: DevEui, upload: Annotated[PhotoUpload, Depends(uploads.photo_upload)]
) -> dict[str, Any]:
    """Store the device's installation photo (replacing the one it had). The body is the
    image itself; it is re-encoded as a JPEG without its metadata (EXIF GPS...)."""
    device = live_device(scope.conn, dev_eui)
    image = upload.clean()
    row = photos.store(
        scope.conn, tenant_id=scope.tenant_id, device=device, image=image,
        uploaded_by=scope.actor.label,
    )  # fmt: skip
    details = upload.audit_details(image)
    audit.record(scope.conn, scope.actor, "device.photo.upload", target=dev_eui, details=details)
    return row


@router.get("/{dev_eui}/photo", response_class=Response, responses=uploads.PHOTO_RESPONSES)
def get_photo(scope: Read, dev_eui: DevEui) -> Response:
    """The device's installation photo, a JPEG; 404 if it has none."""
    found = photos.image_of(scope.conn, live_device(scope.conn, dev_eui)["id"])
    if found is None:
        raise HTTPException(404, f"device {dev_eui} has no installation photo")
    return uploads.photo_response(*found)


@router.delete("/{dev_eui}/photo", status_code=status.HTTP_204_NO_CONTENT)
def delete_photo(scope: Write, dev_eui: DevEui) -> Response:
    """Remove the device's installation photo (204 whether or not it had one)."""
    removed = photos.delete(scope.conn, live_device(scope.conn, dev_eui)["id"])
    audit.record(
        scope.conn, scope.actor, "device.photo.delete", target=dev_eui,
        details={"removed": removed},
    )  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)
