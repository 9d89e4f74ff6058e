"""The live event: what one processed frame of a camera tells its watchers (one per frame).

One pydantic model, so the processor builds it, the Server-Sent Events endpoint sends it (``StreamEvent``,
the event without the processor's timings) and the OpenAPI document describes it from the same
definition.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FrameSize(_Event):
    width: int
    height: int


class LiveTrack(_Event):
    """One face on the frame, under the id its track keeps for as long as the face stays in view."""

    track_id: int = Field(
        description="The face's track on this camera; the same face keeps it frame after frame."
    )
    box: list[float] = Field(description="x1, y1, x2, y2 in frame pixels.", min_length=4, max_length=4)
    landmarks: list[list[float]] = Field(
        description="5 points [x, y]: left eye, right eye, nose, left and right mouth corners."
    )
    person_id: int | None = Field(description="Who the track's vote names; null: nobody enrolled (yet).")
    name: str | None = Field(description="The named person's display name.")
    confidence: float | None = Field(
        description="Mean cosine similarity of the track's embeddings that voted for the person; null "
        "when nobody is named."
    )
    embedded: bool = Field(description="An embedding of this face was computed on this frame.")


class StreamEvent(_Event):
    """A camera's frame as processed: every face tracked on it, named once its track is identified. What
    ``GET /v1/cameras/<name>/events`` sends, one per frame."""

    camera: str
    ts: float = Field(description="When the frame was decoded, in seconds since the epoch.")
    frame_size: FrameSize
    tracks: list[LiveTrack]


class LiveEvent(StreamEvent):
    """The processor's event: the streamed one and the processor's own time (for the reader and
    ``/metrics``; the stream leaves it out)."""

    timings_ms: dict[str, float] = Field(
        description="Milliseconds the processor spent on this frame, per stage (detect, track, quality, "
        "embed, match) and in total: a reader falling behind drops frames by it."
    )
