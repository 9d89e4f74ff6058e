"""Unknown faces: the tracks that ended unidentified as the readers keep them in a real Redis
(``live.unknown_tracks``), and their grouping into unknown people by real embeddings of the shared
photos (``recognition.unknowns``)."""

from __future__ import annotations

import cv2
import numpy as np
import redis

from live import keys
from live.processing import EndedTrack, ProcessedFrame
from live.unknown_tracks import MAX_FACE_BYTES, UnknownTracks, UnknownTrackSink
from ml.pipeline import FacePipeline
from recognition.unknowns import group_tracks
from tests.shared_data import shared_dir

T0 = 1_767_225_600.0


def embeddings_of(pipe: FacePipeline, person: str, photo: str) -> np.ndarray:
    """The largest face of a shared enrolment photo, embedded (1, d)."""
    image = cv2.imread(str(shared_dir() / "datasets" / "facebank" / person / photo))
    found = pipe.detect([image])[0]
    largest = int(
        np.argmax((found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1]))
    )
    return np.asarray(pipe.embed(image, found.landmarks[largest : largest + 1]), dtype=np.float32)


def test_tracks_of_one_stranger_group_together_and_two_strangers_apart(pipe: FacePipeline) -> None:
    tracks = [
        embeddings_of(pipe, "obama", "obama.jpg"),
        embeddings_of(pipe, "biden", "biden.jpg"),
        embeddings_of(pipe, "obama", "obama2.jpg"),
        embeddings_of(pipe, "biden", "biden2.jpg"),
        embeddings_of(pipe, "rose_leslie", "img1.jpg"),
    ]
    assert group_tracks(tracks, pipe.embedder.default_threshold) == [1, 2, 1, 2, 3]
    assert group_tracks(tracks[:1], pipe.embedder.default_threshold) == [1], "seen once is still someone"
    assert group_tracks([], pipe.embedder.default_threshold) == []


def ended(track_id: int, person_id: int | None, face: bytes | None, k: int = 2) -> EndedTrack:
    vectors = np.eye(k, 128, dtype=np.float32)
    return EndedTrack("room12", track_id, T0 + track_id, T0 + track_id + 3, person_id, None, vectors, k, face)


def frame(ts: float, gone: list[EndedTrack]) -> ProcessedFrame:
    return ProcessedFrame({"camera": "room12", "ts": ts, "tracks": []}, ended=gone)


def test_only_unidentified_tracks_with_embeddings_are_kept_with_a_bounded_face(
    live_redis: redis.Redis,
) -> None:
    store = UnknownTracks(live_redis, keep_s=600, max_tracks=20)
    sink = UnknownTrackSink(store)
    jpeg = cv2.imencode(".jpg", np.full((60, 50, 3), 128, np.uint8))[1].tobytes()
    sink.publish(
        "room12", frame(T0 + 5, [ended(1, None, jpeg), ended(2, 7, jpeg), ended(3, None, jpeg, k=0)])
    )
    sink.closed("room12", [ended(4, None, b"\xff" * (MAX_FACE_BYTES + 1))])

    kept = store.ended_within("room12", T0, T0 + 100)
    assert [(t.first_seen, t.last_seen, t.embeddings.shape) for t in kept] == [
        (T0 + 1, T0 + 4, (2, 128)),
        (T0 + 4, T0 + 7, (2, 128)),
    ]
    assert kept[0].face_jpeg == jpeg and kept[1].face_jpeg is None, "a face over the bound is not kept"
    np.testing.assert_array_equal(kept[0].embeddings, np.eye(2, 128, dtype=np.float32))
    assert [t.last_seen for t in store.ended_within("room12", T0 + 5, T0 + 100)] == [T0 + 7], (
        "by when it ended"
    )
    assert 0 < live_redis.ttl(keys.unknown_tracks("room12")) <= 600

    for track_id in range(10, 40):
        sink.publish("room12", frame(T0 + track_id, [ended(track_id, None, jpeg)]))
    assert live_redis.zcard(keys.unknown_tracks("room12")) == 20, "the newest are kept"
