"""Track evidence in a real Redis: what the readers' ``EvidenceSink`` records of identified tracks, and the
seconds per person a session's window reads back (``live.evidence``).

The frames here are the processor's output as the sink receives it (``ProcessedFrame``); the real
processor over a real stream feeding the sink is ``tests/integration/test_live_sessions.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import redis

from live import keys
from live.evidence import Evidence, EvidenceSink, TrackEvidence, coverage, is_stream_url
from live.processing import EndedTrack, ProcessedFrame

T0 = 1_767_225_600.0


def frame(
    ts: float, *tracks: tuple[int, int | None], ended: list[EndedTrack] | None = None
) -> ProcessedFrame:
    """A processed frame at ``ts`` showing ``(track_id, person_id)`` tracks."""
    event = {
        "camera": "room12",
        "ts": ts,
        "frame_size": {"width": 640, "height": 480},
        "tracks": [
            {"track_id": tid, "person_id": pid, "name": None, "confidence": 0.8 if pid else None}
            for tid, pid in tracks
        ],
    }
    return ProcessedFrame(event, ended=ended or [])


def ended(track_id: int, person_id: int | None, first: float, last: float) -> EndedTrack:
    return EndedTrack(
        "room12", track_id, first, last, person_id, None, np.zeros((0, 128), np.float32), 0, None
    )


@pytest.fixture()
def store(live_redis: redis.Redis) -> TrackEvidence:
    return TrackEvidence(live_redis, keep_s=600, max_tracks=100)


def test_a_named_track_counts_from_its_first_frame_to_its_last(store: TrackEvidence) -> None:
    sink = EvidenceSink(store)
    sink.publish("room12", frame(T0, (1, None)))  # tracked, not yet named
    sink.publish("room12", frame(T0 + 0.2, (1, None), (2, None)))
    sink.publish("room12", frame(T0 + 0.4, (1, 7), (2, None)))  # named: 7 from the track's first frame
    sink.publish("room12", frame(T0 + 3.0, (1, 7), (2, None)))

    entries = store.window("room12", T0, T0 + 10)
    assert [(e.person_id, e.first_seen, e.last_seen, e.confidence) for e in entries] == [
        (7, T0, T0 + 3.0, 0.8)
    ]
    assert coverage({0: entries}, T0, T0 + 10)[7].seconds == pytest.approx(3.0)
    assert coverage({0: entries}, T0 + 1, T0 + 2)[7].seconds == pytest.approx(1.0), "clipped to the window"
    assert store.window("room12", T0 + 3.5, T0 + 10) == [], "a window after the track holds nothing of it"


def test_ended_and_closed_tracks_write_their_last_word_and_unnamed_ones_none(store: TrackEvidence) -> None:
    sink = EvidenceSink(store)
    sink.publish("room12", frame(T0, (1, 7), (2, None)))
    sink.publish("room12", frame(T0 + 1.0, (1, 7), (2, None), (3, 9)))
    sink.publish("room12", frame(T0 + 2.0, (2, None), ended=[ended(1, 7, T0, T0 + 1.5)]))
    sink.closed("room12", [ended(2, None, T0, T0 + 2.0), ended(3, 9, T0 + 1.0, T0 + 2.0)])

    entries = sorted(store.window("room12", T0, T0 + 10), key=lambda e: e.person_id)
    assert [(e.person_id, e.first_seen, e.last_seen) for e in entries] == [
        (7, T0, T0 + 1.5),
        (9, T0 + 1.0, T0 + 2.0),
    ]
    assert entries[0].confidence == 0.8, "the vote's similarity is kept when the track ends"


def test_two_tracks_of_one_person_at_once_count_their_seconds_once() -> None:
    both = [
        Evidence("a:1", 7, T0, T0 + 4, 0.7),  # camera 0
        Evidence("b:1", 7, T0 + 2, T0 + 6, 0.9),  # camera 1, overlapping 2 s
        Evidence("a:2", 7, T0 + 8, T0 + 9, None),
    ]
    seen = coverage({0: both[::2], 1: both[1:2]}, T0, T0 + 10)[7]
    assert seen.seconds == pytest.approx(7.0)
    assert (seen.first_seen, seen.last_seen) == (T0, T0 + 9)
    assert (seen.best_confidence, seen.best_camera) == (0.9, 1)


def test_evidence_is_bounded_by_count_and_age_and_expires(live_redis: redis.Redis) -> None:
    sink = EvidenceSink(TrackEvidence(live_redis, keep_s=600, max_tracks=100))
    for track_id in range(150):
        sink.publish("room12", frame(T0 + track_id, (track_id, 7)))
    assert live_redis.zcard(keys.evidence("room12")) == 100
    kept = TrackEvidence(live_redis, keep_s=600, max_tracks=100).window("room12", 0, T0 + 1000)
    assert min(e.first_seen for e in kept) == T0 + 50, "the oldest went first"
    assert 0 < live_redis.ttl(keys.evidence("room12")) <= 600

    sink.publish("room12", frame(T0 + 149 + 601, (1000, 7)))  # ten minutes later: the rest is too old
    assert live_redis.zcard(keys.evidence("room12")) == 1


def test_only_rtsp_cameras_are_counted_by_evidence() -> None:
    assert is_stream_url("rtsp://10.0.0.5/h264") and is_stream_url("RTSPS://10.0.0.5/h264")
    assert not is_stream_url("http://10.0.0.5/mjpeg") and not is_stream_url("https://10.0.0.5/a.jpg")


def test_the_sink_records_since_when_a_camera_is_tracked_named_or_not(store: TrackEvidence) -> None:
    assert not store.tracked_within("room12", T0, T0 + 10), "nobody ever looked"
    sink = EvidenceSink(store)
    sink.publish("room12", frame(T0 + 1))  # an empty room is still a tracked room
    sink.publish("room12", frame(T0 + 4, (1, None)))
    assert store.window("room12", T0, T0 + 10) == []
    assert store.tracked_within("room12", T0, T0 + 2) and store.tracked_within("room12", T0 + 3, T0 + 5)
    assert not store.tracked_within("room12", T0 + 4.5, T0 + 9), "after its last frame"
    assert not store.tracked_within("room12", T0 - 5, T0 + 1), "before its first frame"
