"""Cleaning an uploaded photo (a device's installation, an enforcement action's evidence):
what is stored is always a fresh JPEG.

The declared type must be JPEG, PNG or WebP and match the bytes, which must decode. The
image is turned upright from its EXIF orientation, shrunk to at most 2048 px on its long
side and drawn onto a new canvas, so that nothing of the upload's metadata survives: phone
photos carry the GPS position, the phone's owner and serial number in EXIF, XMP and
comments. Alpha is flattened onto white.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

ACCEPTED = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
MAX_SIDE = 2048
# Below Pillow's decompression-bomb warning (89.5 Mpx): more than a phone's full-size photo,
# and the decoded image must fit in the worker's memory.
MAX_PIXELS = 80_000_000
QUALITY = 85


class ImageRejected(ValueError):
    """An upload that is not a photo we can store: `status` 415 (type) or 422 (content)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CleanImage:
    """A re-encoded photo, ready to store."""

    data: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"


def media_type(header: str | None) -> str:
    """The declared media type (`image/png; x=y` → `image/png`); 415 unless accepted."""
    declared = (header or "").split(";")[0].strip().lower()
    if declared not in ACCEPTED:
        accepted = ", ".join(ACCEPTED)
        shown = declared or "none"
        raise ImageRejected(415, f"Content-Type {shown} is not accepted: send {accepted}")
    return declared


def clean(data: bytes, declared: str) -> CleanImage:
    """The upload as a clean JPEG; ImageRejected when it is not a usable image."""
    if not data:
        raise ImageRejected(422, "the body is empty: send the image bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(ACCEPTED.values()))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        detail = f"the image has too many pixels: at most {MAX_PIXELS // 10**6} megapixels"
        raise ImageRejected(422, detail) from None
    except Exception:  # whatever Pillow refuses is the caller's bad input, never a 500
        detail = f"the body is not a JPEG, PNG or WebP image ({declared} declared)"
        raise ImageRejected(422, detail) from None
    with image:
        found = f"image/{(image.format or '').lower()}"
        if found != declared:
            raise ImageRejected(
                422, f"the body is a {image.format} image, not {declared} as declared"
            )
        width, height = image.size
        if width * height > MAX_PIXELS:
            detail = (
                f"the image is {width}×{height} pixels: at most {MAX_PIXELS // 10**6} megapixels"
            )
            raise ImageRejected(422, detail)
        try:
            return _reencode(image)
        except Exception:  # truncated or damaged data
            detail = "the image is damaged or truncated and cannot be decoded"
            raise ImageRejected(422, detail) from None


def _reencode(image: Image.Image) -> CleanImage:
    image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale directly
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", upright.size, "white")  # a new image: no metadata carried over
    if upright.mode in ("RGBA", "LA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
    else:
        canvas.paste(upright.convert("RGB"))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=QUALITY, optimize=True)
    return CleanImage(out.getvalue(), canvas.width, canvas.height)
