"""The newest frame of each live camera, shared through Redis: a frame in milliseconds for anyone.

The reader that holds a camera writes each frame it hands on (``publish``): the JPEG, when it was
decoded, its number and size, all in one hash with a TTL of ``ROLLCALL_LIVE_FRAME_TTL_S``, replaced by
the next frame. A job by camera name (``recognition.frames``) and the page's frame endpoint
(``GET /v1/cameras/<name>/frame``) take it when it is *fresh*, that is at most
``ROLLCALL_LIVE_FRAME_FRESH_S`` old, instead of opening a connection to the camera of their own
(an RTSP camera's first frame costs about a keyframe interval; the shared one a Redis round trip).

A frame's age is measured by Redis' clock (the TTL it has left), so the machine that writes it and
the one that reads it need not agree on the time. Frames are bounded (``ROLLCALL_LIVE_FRAME_MAX_BYTES``)
and short-lived: they show people, and nothing keeps them past their TTL.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.typing import EncodableT, FieldT

import errors
from live import keys


@dataclass(frozen=True)
class SharedFrame:
    """A camera's newest frame as its reader shared it."""

    camera: str
    data: bytes  # JPEG
    ts: float  # when the reader decoded it, seconds since the epoch (the reader's clock)
    frame_no: int  # frames this reader has handed on for the camera since it took it
    width: int
    height: int
    reader: str  # the reader's id (its Celery node name)
    age_s: float  # since it was written, by Redis' clock


class FrameStore:
    """Write and read the newest shared frame of each camera."""

    def __init__(self, client: redis.Redis, ttl_s: float, max_bytes: int) -> None:
        self._client = client
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.max_bytes = max_bytes

    def publish(
        self, camera: str, data: bytes, ts: float, frame_no: int, width: int, height: int, reader: str
    ) -> None:
        """Replace ``camera``'s shared frame with ``data`` (a JPEG); ``FrameTooLarge`` when it is over the
        byte limit."""
        if len(data) > self.max_bytes:
            raise errors.FrameTooLarge(
                f"camera {camera}'s frame is {len(data)} bytes as JPEG; shared frames are bounded at "
                f"{self.max_bytes} (ROLLCALL_LIVE_FRAME_MAX_BYTES)"
            )
        fields: dict[FieldT, EncodableT] = {
            "data": data,
            "ts": repr(ts),
            "frame_no": frame_no,
            "width": width,
            "height": height,
            "reader": reader,
            "ttl_ms": self.ttl_ms,  # a reader on other settings than the one reading: the age stays right
        }
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.frame(camera), mapping=fields)
            pipe.pexpire(keys.frame(camera), self.ttl_ms)
            pipe.execute()

    def latest(self, camera: str, max_age_s: float) -> SharedFrame | None:
        """``camera``'s shared frame if one is at most ``max_age_s`` old, else None."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.frame(camera))
            pipe.pttl(keys.frame(camera))
            fields, left_ms = pipe.execute()
        if not fields or left_ms < 0:
            return None
        age_s = max(0, int(fields.get(b"ttl_ms", self.ttl_ms)) - left_ms) / 1000
        if age_s > max_age_s:
            return None
        return SharedFrame(
            camera=camera,
            data=fields[b"data"],
            ts=float(fields[b"ts"]),
            frame_no=int(fields[b"frame_no"]),
            width=int(fields[b"width"]),
            height=int(fields[b"height"]),
            reader=fields[b"reader"].decode(),
            age_s=age_s,
        )

    def forget(self, camera: str) -> None:
        """Remove ``camera``'s shared frame (its reader stopped: nobody should take a frame it left)."""
        self._client.delete(keys.frame(camera))
