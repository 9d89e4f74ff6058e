"""What a stream reader does with each decoded frame: the one seam between reading and recognising.

A reader owns a camera (its lease) and decodes frames at the configured rate; for each one it calls
``FrameProcessor.process`` and publishes what comes back. Tracking state lives in the processor,
beside the frames, in order: one processor per camera, in the process that holds the camera's lease.
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


@dataclass(frozen=True)
class ProcessedFrame:
    """One frame's outcome: the live event (JSON-ready) and any presence changes it decided."""

    event: dict[str, Any]  # {"camera", "ts", "frame_size", "tracks": [{"track_id", "box", ...}]}
    presence: list[PresenceChange] = field(default_factory=list)


class FrameProcessor(Protocol):
    """Turns a camera's frames, in order, into live events; one instance per camera."""

    def process(self, image: np.ndarray, ts: float) -> ProcessedFrame:
        """``image``: a BGR frame as decoded; ``ts``: when it was decoded (seconds since the epoch)."""
        ...

    def close(self) -> None:
        """The camera stopped being live here (lease lost or released): emit nothing more."""
        ...
