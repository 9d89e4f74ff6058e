"""What a stream reader does with each decoded frame: the one seam between reading and recognising.

A reader owns a camera (its lease) and decodes frames at the configured rate; for each one it calls
``FrameProcessor.process`` and hands what comes back to each of its ``LiveSink``s. Tracking state lives
in the processor, beside the frames, in order: one processor per camera, in the process that holds the
camera's lease.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np


@dataclass(frozen=True)
class PresenceChange:
    """A known person appeared on, or left, a camera (debounced by the processor)."""

    camera: str
    person_id: int
    name: str
    event: Literal["arrived", "left"]
    ts: float  # seconds since the epoch, of the frame that decided it


@dataclass(frozen=True, eq=False)
class EndedTrack:
    """A track that ended (lost for good, or its camera stopped being live here), as later stages keep it:
    attendance over live cameras counts named tracks, unknown faces are grouped by their embeddings."""

    camera: str
    track_id: int
    first_seen: float  # seconds since the epoch
    last_seen: float
    person_id: int | None  # what the track's vote named, None: never identified
    name: str | None
    embeddings: np.ndarray  # (k, d) float32, L2-normalised, oldest first; k = 0 when none was computed
    embedded: int  # embeddings computed for the track in all (the vote keeps the last k)
    best_face_jpeg: bytes | None  # the best face the track showed, cropped as the camera saw it


@dataclass(frozen=True)
class ProcessedFrame:
    """One frame's outcome: the live event (JSON-ready), the presence changes it decided and the tracks
    that ended on it."""

    event: dict[str, Any]  # {"camera", "ts", "frame_size", "tracks": [{"track_id", "box", ...}]}
    presence: list[PresenceChange] = field(default_factory=list)
    ended: list[EndedTrack] = field(default_factory=list)


class FrameProcessor(Protocol):
    """Turns a camera's frames, in order, into live events; one instance per camera."""

    def process(self, image: np.ndarray, ts: float) -> ProcessedFrame:
        """``image``: a BGR frame as decoded; ``ts``: when it was decoded (seconds since the epoch)."""
        ...

    def close(self) -> list[EndedTrack]:
        """The camera stopped being live here (lease lost or released): every open track ends; no more
        events."""
        ...


class LiveSink(Protocol):
    """Where a reader sends what its processors produce: Redis channels for the event stream, MQTT and
    webhooks for presence, attendance sessions for track evidence. A reader has several; one failing
    (logged, counted) never keeps the others from a frame."""

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        """A processed frame of ``camera``."""
        ...

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        """``camera`` stopped being processed here; ``ended``: its tracks still open then."""
        ...
