"""The live processor on a real stream: GStreamer's RTSP server (tests/cameras) decoded by PyAV.

The readers that own cameras in a deployment are the stream readers' work (live.processing's other
side); here the test decodes the H.264 stream itself, frame after frame at the stream's pace, and
hands each frame to the processor as a reader does: the real codec's frames, timestamps and pace.
"""

from __future__ import annotations

import time
from collections import Counter

import av
import pytest

from benchmarks.camera_servers import GstRtspCamera
from live.processor import LiveProcessor
from ml.pipeline import FacePipeline
from sources.rtsp_camera import FFMPEG_OPTIONS
from tests.live.conftest import Enrolled, live_params

SECONDS = 4.0  # of stream: two past ROLLCALL_LIVE_ARRIVE_S
STREAM_FPS = 10.0  # GstRtspCamera's rate


@pytest.fixture(scope="module")
def decoded(gst_camera: GstRtspCamera) -> list[tuple[float, object]]:
    """(decode time, BGR frame) of SECONDS of the camera's /h264 stream (obama_small.jpg)."""
    frames = []
    with av.open(gst_camera.url("/h264"), options=FFMPEG_OPTIONS, timeout=(10.0, 10.0)) as container:
        for frame in container.decode(video=0):
            frames.append((time.time(), frame.to_ndarray(format="bgr24")))
            if frames[-1][0] - frames[0][0] >= SECONDS:
                break
    return frames


def test_a_face_on_a_real_rtsp_stream_keeps_one_track_one_name_and_arrives_once(
    decoded: list[tuple[float, object]], pipe: FacePipeline, enrolled: Enrolled
) -> None:
    processor = LiveProcessor("hall", pipe, enrolled.snapshots.take, live_params(), STREAM_FPS)
    events, presence = [], []
    for ts, image in decoded:
        out = processor.process(image, ts)  # type: ignore[arg-type]
        events.append(out.event)
        presence += out.presence
    processor.close()
    assert len(events) >= 0.8 * SECONDS * STREAM_FPS
    tracks = [t for event in events for t in event["tracks"]]
    assert len(tracks) == len(events), "the one face was not tracked on every frame"
    assert len({t["track_id"] for t in tracks}) == 1
    assert Counter(t["name"] for t in tracks) == Counter({"obama": len(events)})
    embeddings = sum(t["embedded"] for t in tracks)
    assert 1 <= embeddings <= (decoded[-1][0] - decoded[0][0]) + 1
    assert [(c.camera, c.name, c.event) for c in presence] == [("hall", "obama", "arrived")]
