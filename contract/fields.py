"""The value types a job's arguments are made of, with the limits both sides check.

The API validates requests with these (its request models extend the contract's, ``webapi.schemas``)
and a worker validates the message it takes with the same types, so a limit is stated once and holds
however a job was sent. The OpenAPI document shows them as the API enforces them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from facebank.limits import CAMERA_NAME, MAX_CAMERA_NAME
from sources.urls import is_camera_url

MAX_URL_LENGTH = 2048
# What a camera URL starts with, for the OpenAPI document (the check itself gives a clearer message).
CAMERA_URL_PATTERN = "^([hH][tT][tT][pP][sS]?|[rR][tT][sS][pP][sS]?)://"
CAMERA_URL_RULE = "must start with http://, https://, rtsp:// or rtsps://"
# Facebank ids are INTEGER columns, 32-bit on PostgreSQL: a larger number names nobody.
MAX_ID = 2**31 - 1
# Pixel coordinates: finite, and far beyond any frame the pixel limit lets through.
MAX_COORDINATE = 1_000_000.0
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_COORDINATE, le=MAX_COORDINATE)]


def _json_integer(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3, as JSON Schema says (strict models refuse "3")."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = BeforeValidator(_json_integer)
PersonId = Annotated[int, Field(ge=1, le=MAX_ID), JsonInt]  # the validator last: it runs first
Landmarks = list[Annotated[list[Coordinate], Field(min_length=2, max_length=2)]]


def _camera_url(value: str) -> str:
    if not is_camera_url(value):
        raise ValueError(CAMERA_URL_RULE)
    return value


CameraUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        description="A camera's URL: an HTTP(S) snapshot or MJPEG stream, or an RTSP(S) stream "
        "(credentials as user:password@, percent-encoded).",
        examples=["http://192.168.1.20:8080/shot.jpg"],
        json_schema_extra={"pattern": CAMERA_URL_PATTERN},
    ),
    AfterValidator(_camera_url),
]
CameraName = Annotated[
    str,
    Field(
        max_length=MAX_CAMERA_NAME,
        pattern=CAMERA_NAME,
        description="A camera of the registry (`GET /v1/cameras`) by name; the worker looks up its URL "
        "and credentials, so none travel with the job.",
        examples=["room12"],
    ),
]
