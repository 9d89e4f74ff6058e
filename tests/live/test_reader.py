"""Stream readers in this process, on a real Redis, reading real cameras (GStreamer's RTSP server and the
MJPEG server, each behind a counting proxy: the camera's own view of its connections).

What a user would notice: a watched camera's frames appear in Redis at the configured rate, over one
connection; it stops being read as soon as nobody watches it; readers split the live cameras fairly
and a camera never has two readers at once; a failing camera shows its error code and is retried;
a configured processor's events and presence changes are published per camera.

(The tests that kill reader processes are in ``tests/integration/test_live_readers.py``.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import redis

import errors
from benchmarks.camera_servers import GstRtspCamera
from benchmarks.processes import free_port
from live import keys
from live.demand import Demand
from live.feed import FeedConfig
from live.framestore import FrameStore
from live.leases import lease_log
from live.processing import EndedTrack, PresenceChange, ProcessedFrame
from live.reader import Reader, ReaderConfig
from live.status import StatusBoard
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist
from tests.cameras.proxy import CountingProxy
from tests.conftest import RedisServer, wait_until
from tests.sources.camera_server import CameraServer, closed_port

LIMITS = FetchLimits(connect_timeout_s=2.0, read_timeout_s=3.0, total_s=5.0, max_bytes=5_000_000, retries=0)
FPS = 5.0


def config(reader_id: str, **changes: object) -> ReaderConfig:
    feed = FeedConfig(
        reader_id=reader_id,
        fps=FPS,
        reconnect_max_s=2.0,
        status_ttl_s=3.0,
        allowlist=CameraAllowlist.parse("127.0.0.1/32"),
        limits=LIMITS,
        resolve_every_s=0.5,
    )
    base = ReaderConfig(feed=feed, lease_ttl_s=3.0, max_cameras=0, frame_ttl_s=3.0, frame_max_bytes=2_000_000)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture()
def readers(live_redis: redis.Redis) -> Iterator[Callable[..., Reader]]:
    """Start in-process readers over ``cameras`` (name → URL); all are stopped after the test."""
    started: list[Reader] = []

    def start(reader_id: str, cameras: dict[str, str], **kwargs: object) -> Reader:
        reader = Reader(live_redis, config(reader_id), lambda name: CameraEndpoint(cameras[name]), **kwargs)  # type: ignore[arg-type]
        started.append(reader.start())
        return reader

    yield start
    for reader in started:
        reader.stop()


def test_a_watched_camera_is_read_at_the_rate_and_let_go_when_nobody_watches(
    live_redis: redis.Redis,
    readers: Callable[..., Reader],
    gst_camera: GstRtspCamera,
    proxy: Callable[[int], CountingProxy],
) -> None:
    front = proxy(gst_camera.port)
    reader = readers("reader-a", {"room12": f"rtsp://127.0.0.1:{front.port}/h264"})
    demand, frames, board = Demand(live_redis), FrameStore(live_redis, 3, 2_000_000), StatusBoard(live_redis)
    demand.watch("room12", "page", 30)
    wait_until(lambda: frames.latest("room12", 1) is not None, 30, "the first shared frame")
    first = frames.latest("room12", 1)
    time.sleep(2.0)
    later = frames.latest("room12", 1)
    assert first is not None and later is not None
    rate = (later.frame_no - first.frame_no) / (later.ts - first.ts)
    assert FPS * 0.7 <= rate <= FPS * 1.3, f"{rate:.1f} frames/s shared (the camera sends 10/s)"
    assert (later.width, later.height, later.reader) == (320, 240, "reader-a")
    status = board.read("room12")
    assert status is not None and (status.state, status.reader) == ("reading", "reader-a")
    assert reader.describe()["cameras"]["room12"]["state"] == "reading"
    assert front.accepted == 1

    demand.leave("room12", "page")
    wait_until(lambda: front.open_now == 0, 5, "the camera's connection to close")
    # The connection closes first, then the lease, the shared frame and the status go (in that order).
    wait_until(lambda: board.read("room12") is None, 5, "the camera's status to be cleared")
    assert reader.leases.holder("room12") is None
    assert frames.latest("room12", 10) is None
    assert [entry["event"] for entry in lease_log(live_redis)] == ["acquired", "released"]


def test_readers_split_the_live_cameras_and_a_camera_never_has_two(
    live_redis: redis.Redis,
    readers: Callable[..., Reader],
    gst_camera: GstRtspCamera,
    mjpeg_camera: CameraServer,
    proxy: Callable[[int], CountingProxy],
) -> None:
    fronts = {
        "room1": proxy(gst_camera.port),
        "room2": proxy(gst_camera.port),
        "room3": proxy(mjpeg_camera.port),
    }
    cameras = {
        "room1": f"rtsp://127.0.0.1:{fronts['room1'].port}/h264",
        "room2": f"rtsp://127.0.0.1:{fronts['room2'].port}/h265",
        "room3": f"http://127.0.0.1:{fronts['room3'].port}/mjpeg-live",
    }
    demand = Demand(live_redis)
    for name in cameras:
        demand.watch(name, "page", 60)
    first = readers("reader-a", cameras)
    wait_until(lambda: len(first.describe()["cameras"]) == 3, 10, "the only reader to take all three")
    second = readers("reader-b", cameras)
    wait_until(lambda: len(second.describe()["cameras"]) == 1, 10, "the newcomer to get its share")
    time.sleep(1.5)  # a few more rounds: nothing moves once the split is fair
    held = {name: first.leases.holder(name) for name in cameras}
    assert sorted(held.values()) == ["reader-a", "reader-a", "reader-b"]
    assert set(first.describe()["cameras"]) | set(second.describe()["cameras"]) == set(cameras)
    assert all(front.most_at_once() == 1 for front in fronts.values())
    moved = [entry for entry in lease_log(live_redis) if entry["event"] == "released"]
    assert len(moved) == 1  # reader-a let go of exactly one camera, which reader-b took


def test_a_failing_camera_is_retried_and_its_status_names_the_error(
    live_redis: redis.Redis, readers: Callable[..., Reader]
) -> None:
    readers("reader-a", {"gone": f"rtsp://127.0.0.1:{closed_port()}/h264"})
    Demand(live_redis).watch("gone", "page", 30)
    board = StatusBoard(live_redis)

    def state() -> str | None:
        status = board.read("gone")
        return status.state if status is not None else None

    wait_until(lambda: state() == "retrying", 10, "the reader to retry")
    status = board.read("gone")
    assert status is not None and status.error_code == "camera_unreachable"
    assert status.retry_at is not None and status.retry_at > status.since
    assert "127.0.0.1" in (status.error_message or "")


def test_a_camera_changed_in_the_registry_is_connected_again_and_a_deleted_one_let_go(
    live_redis: redis.Redis,
    readers: Callable[..., Reader],
    mjpeg_camera: CameraServer,
    proxy: Callable[[int], CountingProxy],
) -> None:
    old, new = proxy(mjpeg_camera.port), proxy(mjpeg_camera.port)
    registry = {"room12": f"http://127.0.0.1:{old.port}/mjpeg-live"}

    def resolve(name: str) -> CameraEndpoint:
        if name not in registry:
            raise errors.CameraNotFound(f"no camera named {name!r}")
        return CameraEndpoint(registry[name])

    reader = Reader(live_redis, config("reader-a"), resolve).start()
    try:
        Demand(live_redis).watch("room12", "page", 30)
        wait_until(lambda: old.open_now == 1, 10, "the reader to connect")
        registry["room12"] = f"http://127.0.0.1:{new.port}/mjpeg-live"  # an admin changed its URL
        wait_until(lambda: new.open_now == 1 and old.open_now == 0, 5, "the reader to move to the new URL")
        del registry["room12"]  # then deleted it
        wait_until(lambda: new.open_now == 0, 5, "the reader to let the deleted camera go")
        wait_until(lambda: reader.leases.holder("room12") is None, 3, "its lease to be released")
        assert "room12" not in reader.describe()["cameras"]
        assert (old.accepted, new.accepted) == (1, 1)
    finally:
        reader.stop()


class FrameSizes:
    """A stand-in for the tracker (``live.processor``, another part of issue 23): an event per frame with
    the frame's size, and one presence change on the first frame; records that it was closed."""

    def __init__(self, camera: str, closed: list[str]) -> None:
        self.camera = camera
        self.closed = closed
        self.frames = 0

    def process(self, image: np.ndarray, ts: float) -> ProcessedFrame:
        self.frames += 1
        height, width = image.shape[:2]
        event = {"camera": self.camera, "ts": ts, "frame_size": [width, height], "tracks": []}
        presence = [PresenceChange(self.camera, 7, "obama", "arrived", ts)] if self.frames == 1 else []
        return ProcessedFrame(event, presence)

    def close(self) -> list[EndedTrack]:
        self.closed.append(self.camera)
        return []


def test_processed_frames_are_published_as_events_and_presence_changes(
    live_redis: redis.Redis,
    readers: Callable[..., Reader],
    mjpeg_camera: CameraServer,
) -> None:
    closed: list[str] = []
    subscriber = live_redis.pubsub()
    subscriber.subscribe(keys.events_channel("room12"), keys.presence_channel("room12"))
    readers(
        "reader-a",
        {"room12": mjpeg_camera.url("/mjpeg-live")},
        processors=lambda camera: FrameSizes(camera, closed),
    )
    demand = Demand(live_redis)
    demand.watch("room12", "page", 30)
    events: list[dict[str, object]] = []
    presence: list[dict[str, object]] = []
    deadline = time.monotonic() + 15
    while len(events) < 5 and time.monotonic() < deadline:
        message = subscriber.get_message(timeout=1)
        if message is None or message["type"] != "message":
            continue
        target = events if message["channel"] == keys.events_channel("room12").encode() else presence
        target.append(json.loads(message["data"]))
    assert len(events) == 5
    assert all(event["camera"] == "room12" and event["frame_size"] == [320, 240] for event in events)
    assert [change["event"] for change in presence] == ["arrived"]
    assert presence[0] == {
        "camera": "room12",
        "person_id": 7,
        "name": "obama",
        "event": "arrived",
        "ts": events[0]["ts"],
    }
    demand.leave("room12", "page")
    wait_until(lambda: closed == ["room12"], 5, "the camera's processor to be closed")
    subscriber.close()


class BrokenSink:
    """A sink whose every call fails (an MQTT broker gone away, say)."""

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        raise ConnectionError("broker gone")

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        raise ConnectionError("broker gone")


class Recorder:
    """A sink that keeps what it was given."""

    def __init__(self) -> None:
        self.frames: list[ProcessedFrame] = []
        self.closed_cameras: list[str] = []

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        self.frames.append(processed)

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        self.closed_cameras.append(camera)


def test_a_failing_sink_keeps_no_frame_from_the_others(
    live_redis: redis.Redis,
    readers: Callable[..., Reader],
    mjpeg_camera: CameraServer,
) -> None:
    closed: list[str] = []
    recorder = Recorder()
    subscriber = live_redis.pubsub()
    subscriber.subscribe(keys.events_channel("room12"))
    readers(
        "reader-a",
        {"room12": mjpeg_camera.url("/mjpeg-live")},
        processors=lambda camera: FrameSizes(camera, closed),
        sinks=[BrokenSink(), recorder],
    )
    demand = Demand(live_redis)
    demand.watch("room12", "page", 30)
    events = 0
    deadline = time.monotonic() + 15
    while events < 3 and time.monotonic() < deadline:
        message = subscriber.get_message(timeout=1)
        events += message is not None and message["type"] == "message"
    assert events == 3, "the event channel (the first sink) kept publishing"
    wait_until(lambda: len(recorder.frames) >= 3, 5, "the sink after the broken one to get frames")
    assert all(frame.event["camera"] == "room12" for frame in recorder.frames)
    demand.leave("room12", "page")
    wait_until(lambda: recorder.closed_cameras == ["room12"], 5, "the sinks to hear the camera closed")
    subscriber.close()


def test_a_reader_that_loses_redis_stops_reading_before_its_lease_can_run_out(
    tmp_path: Path, gst_camera: GstRtspCamera, proxy: Callable[[int], CountingProxy]
) -> None:
    """Redis away: the reader cannot renew, so it closes the camera before Redis could give the lease to
    another reader (the lease's TTL after its last renewal): never two readers, even then."""
    server = RedisServer(free_port(), tmp_path / "redis")
    server.start()
    client = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    front = proxy(gst_camera.port)
    settings = config("reader-a")
    reader = Reader(client, settings, lambda name: CameraEndpoint(f"rtsp://127.0.0.1:{front.port}/h264"))
    reader.start()
    try:
        Demand(client).watch("room12", "page", 60)
        frames = FrameStore(client, 3, 2_000_000)
        wait_until(lambda: frames.latest("room12", 1) is not None, 30, "the first shared frame")
        server.stop()  # Redis goes away: no renewal can be confirmed from now on
        gone = time.monotonic()
        wait_until(lambda: front.open_now == 0, settings.lease_ttl_s + 2, "the reader to close the camera")
        assert (front.last_closed() or 0) - gone < settings.lease_ttl_s
    finally:
        reader.stop()
