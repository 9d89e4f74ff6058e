"""Bytes to a BGR frame, safely: the size is read from the header before any pixel is decoded.

A 100 kB PNG or JPEG can declare 30,000 × 30,000 pixels and make the decoder allocate gigabytes
(a decompression bomb), so Pillow reads only the header to learn the size, and OpenCV decodes the
frame only when it fits. Only formats whose signature both libraries read the same way are accepted.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

import errors

# Pillow names of the formats a camera or an upload sends; each starts with a distinct signature,
# so Pillow (which measures) and OpenCV (which decodes) cannot read the bytes as different formats.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode a JPEG/PNG/WebP/BMP into a BGR uint8 [H,W,3] frame (gray and alpha become 3-channel BGR).

    Raises ``FrameTooLarge`` when the header declares more than ``max_pixels`` pixels (checked
    before decoding) and ``NotAnImage`` for empty, unknown, truncated or corrupt data.
    """
    if not data:
        raise errors.NotAnImage("the image is empty")
    width, height = image_size(data, max_pixels)
    if width * height > max_pixels:
        raise errors.FrameTooLarge(f"image is {width}×{height} pixels; the limit is {max_pixels} pixels")
    if data[:3] == b"\xff\xd8\xff" and not _jpeg_has_end(data):
        raise errors.NotAnImage("the JPEG is truncated (no end-of-image marker after its last scan)")
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
        raise errors.NotAnImage(f"the {width}×{height} image is truncated or corrupt")
    return frame


def image_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` from the header alone; nothing is decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:  # Pillow's own ceiling, far above any sane limit
        raise errors.FrameTooLarge(f"image is larger than {max_pixels} pixels ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise errors.NotAnImage(f"not a {'/'.join(ACCEPTED_FORMATS)} image: {exc}") from exc
    if width <= 0 or height <= 0:
        raise errors.NotAnImage(f"the image declares an empty size {width}×{height}")
    return width, height


def _jpeg_has_end(data: bytes) -> bool:
    """Whether an end-of-image marker follows the last start-of-scan.

    Older OpenCV builds decode a JPEG cut short without complaint, filling the missing rows
    with gray. Entropy-coded data escapes 0xFF bytes, so these markers cannot appear inside it.
    """
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.find(b"\xff\xd9", last_scan) >= 0


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """A BGR (or gray) uint8 frame as JPEG bytes, for tests, benchmarks and stored thumbnails."""
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
        raise errors.InvalidInput(f"expected a uint8 HxW or HxWx3 frame, got {frame.dtype} {frame.shape}")
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise errors.InvalidInput(f"OpenCV could not encode a {frame.shape} frame as JPEG")
    return encoded.tobytes()
