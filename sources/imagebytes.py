"""Encoded image bytes before any pixel is decoded: base64 uploads and the format by first bytes.

Pure and cheap, so the API (which never decodes images) refuses a broken or non-image upload
when it is sent, and workers decode uploads and label stored photos with the same rules.
"""

from __future__ import annotations

import base64
import binascii
import re

from errors import InvalidInput, NotAnImage, PayloadTooLarge

_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"BM", "image/bmp"))
IMAGE_TYPES = frozenset(mime for _, mime in _MAGIC) | {"image/webp"}
# RFC 2397: data:[<media type>][;<parameter>=<value>]*;base64,
_DATA_URL = re.compile(r"data:(?:[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)


def sniff_content_type(data: bytes) -> str:
    """The image's MIME type from its first bytes; ``application/octet-stream`` for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _MAGIC if data.startswith(magic)), "application/octet-stream")


def decode_base64(text: str, max_bytes: int) -> bytes:
    """The bytes of a base64 upload; the size is checked before decoding.

    Accepted as tools write it: wrapped in lines (``base64`` breaks at 76 columns; any whitespace is
    ignored) and after a ``data:<type>;base64,`` prefix (what a browser's ``FileReader`` gives).
    """
    if text[:5].lower() == "data:":
        prefix = _DATA_URL.match(text)
        if prefix is None:
            raise InvalidInput(
                "image_b64 is a data: URL but not a base64 one: send data:image/jpeg;base64,<data> "
                "or the base64 alone"
            )
        text = text[prefix.end() :]
    compact = "".join(text.split())
    if len(compact) > (max_bytes * 4) // 3 + 4:
        raise PayloadTooLarge(f"uploaded image is larger than {max_bytes} bytes")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            f"image_b64 is not valid base64 ({exc}): send the image's bytes in standard base64 (A-Z, a-z, "
            "0-9, + and /, padded with =), in one piece or wrapped in lines, with or without a "
            "data:image/...;base64, prefix"
        ) from exc


def check_image_upload(text: str, max_bytes: int) -> None:
    """Refuse an upload that is not base64, too large, empty, or not a JPEG, PNG, WebP or BMP."""
    data = decode_base64(text, max_bytes)
    if sniff_content_type(data) not in IMAGE_TYPES:
        raise NotAnImage("the upload is not a JPEG, PNG, WebP or BMP image")
