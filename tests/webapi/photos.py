"""Photos for API and CLI tests that enrol into the session's shared facebank."""

from __future__ import annotations

import struct
import uuid

from tests.images import shared_photo


def distinct_copy(jpeg: bytes) -> bytes:
    """The same picture with different bytes (a JPEG comment right after the start marker).

    The facebank refuses an image already enrolled by anyone (by SHA-256), and every test in a
    session shares one database, so each enrolment gets its own copy of the photo.
    """
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    comment = uuid.uuid4().hex.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def one_face_photo() -> bytes:
    """A small photo of one face (Obama, 320×240), fresh bytes every call."""
    return distinct_copy(shared_photo("obama_small.jpg"))


def no_face_photo() -> bytes:
    return shared_photo("no_face_synthetic.png")
