"""Live events through the API as they run: a real stream reader process with the live processor
(``celery -A tasks worker -Q rollcall.live``, ``ROLLCALL_LIVE_PROCESSOR=live.processor:for_reader``), the
real API under gunicorn's threads, a Redis of their own, and GStreamer's RTSP server looping a still
classroom scene (Obama and Biden, enrolled, and a girl nobody enrolled) behind a counting proxy: the
camera's own view of who reads it.

What a user would notice: ``GET /v1/cameras/<name>/events`` streams one event per processed frame with
the issue's fields; on a still scene each enrolled person keeps one track id and one name; the camera
is read while a client follows its events and let go within 10 s of the client leaving; the ``fps``
bound holds; the key goes in a header and never works in the URL; an API process serves a bounded
number of streams and still answers everything else while they run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import pytest
import redis
import requests

from benchmarks.camera_servers import GstRtspCamera
from benchmarks.live_scenes import UNKNOWN, Truth, match_truth, still_group
from benchmarks.processes import ApiProcess, ReaderProcess, free_port, start_api, start_reader
from live import keys
from ml.pipeline import FacePipeline
from tests.cameras.proxy import CountingProxy
from tests.conftest import ADMIN_KEY, JOBS_KEY, RedisServer, wait_until
from tests.live.conftest import enrolled_facebank
from tests.sources.camera_server import closed_port

pytestmark = pytest.mark.integration
CAMERA, DARK = "still", "dark"  # the still scene, and a camera that never answers (no events, keepalives)
MAX_FPS, MAX_STREAMS = 10, 2
LET_GO_S = 10.0


@dataclass
class Deployment:
    api: ApiProcess
    reader: ReaderProcess
    store: redis.Redis
    front: CountingProxy
    truth: list[Truth]


@pytest.fixture(scope="module")
def deployment(pipe: FacePipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("live-events")
    people = enrolled_facebank(pipe, folder)
    people.facebank.close()
    scene = still_group(1)
    image, truth = scene.frame(0)
    photo = folder / "still.jpg"
    cv2.imwrite(str(photo), image)
    gst = GstRtspCamera(photo).start()
    front = CountingProxy(gst.port).start()
    redis_server = RedisServer(free_port(), folder / "redis")
    redis_server.start()
    env = {
        **os.environ,
        "ROLLCALL_BROKER_URL": f"{redis_server.url}/0",
        "ROLLCALL_RESULT_BACKEND": f"{redis_server.url}/1",
        "ROLLCALL_DATABASE_URL": f"sqlite:///{folder / 'facebank.db'}",
        "ROLLCALL_UI_CAMERAS": f"{CAMERA}=rtsp://127.0.0.1:{front.port}/h264,"
        f"{DARK}=rtsp://127.0.0.1:{closed_port()}/h264",
        "ROLLCALL_LIVE_PROCESSOR": "live.processor:for_reader",
        "ROLLCALL_LIVE_EVENTS_MAX_FPS": str(MAX_FPS),
        "ROLLCALL_LIVE_EVENTS_MAX_STREAMS": str(MAX_STREAMS),
    }
    reader = start_reader("events-reader", env, folder)
    api = None
    try:
        api = start_api("events-api", env, folder, workers=1, threads=4)
        reader.wait_ready()
        yield Deployment(api, reader, redis.Redis.from_url(f"{redis_server.url}/1"), front, truth)
    finally:
        if api is not None:
            api.stop()
        reader.stop()
        front.stop()
        gst.stop()
        redis_server.stop()


@dataclass
class Stream:
    """An open ``GET …/events``, read block by block (an SSE block ends with a blank line)."""

    response: requests.Response
    blocks: Iterator[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.blocks = self._split()

    def _split(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.response.iter_content(chunk_size=None):
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                yield block

    def events(self, count: int) -> list[tuple[float, dict[str, Any]]]:
        """The next ``count`` data events, with when each arrived (monotonic seconds)."""
        found = []
        for block in self.blocks:
            if block.startswith(b"data: "):
                found.append((time.monotonic(), json.loads(block[len(b"data: ") :])))
                if len(found) == count:
                    return found
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self.response.close()


def open_stream(deployment: Deployment, camera: str = CAMERA, key: str = ADMIN_KEY, **query: Any) -> Stream:
    response = requests.get(
        f"{deployment.api.url}/v1/cameras/{camera}/events",
        params=query,
        headers={"X-API-Key": key},
        stream=True,
        timeout=(5, 60),  # the reader's first frame: a model load and an RTSP keyframe away at most
    )
    assert response.status_code == 200, response.text
    return Stream(response)


def watchers(deployment: Deployment, camera: str = CAMERA) -> int:
    return int(deployment.store.zcard(keys.watchers(camera)))


def subscribers(deployment: Deployment, camera: str = CAMERA) -> int:
    """Subscriptions to the camera's events channel: one per open stream."""
    ((_, count),) = deployment.store.pubsub_numsub(keys.events_channel(camera))
    return int(count)


def wait_until_let_go(deployment: Deployment) -> None:
    """Nobody follows the camera and its reader closed its connection (the previous test's client left)."""
    wait_until(lambda: watchers(deployment) == 0 and deployment.front.open_now == 0, 20, "the camera let go")


def test_events_arrive_with_the_issues_fields_and_names_stay_stable_on_a_still_scene(
    deployment: Deployment,
) -> None:
    stream = open_stream(deployment)
    try:
        headers = stream.response.headers
        assert headers["Content-Type"].startswith("text/event-stream")
        assert (headers["Cache-Control"], headers["X-Accel-Buffering"]) == ("no-store", "no")
        enrolled = {t.key: t for t in deployment.truth if t.who != UNKNOWN}
        seen: list[dict[str, Any]] = []

        def both_named() -> bool:
            seen.extend(event for _, event in stream.events(1))
            return {t["name"] for t in seen[-1]["tracks"]} >= {t.who for t in enrolled.values()}

        wait_until(both_named, 60, "Obama and Biden named")
        named_at = len(seen)
        seen.extend(event for _, event in stream.events(40))  # about 8 s more at the reader's 5 frames/s
    finally:
        stream.close()
    for event in seen:
        assert list(event) == ["camera", "ts", "frame_size", "tracks"]
        assert event["camera"] == CAMERA and event["frame_size"] == {"width": 640, "height": 480}
        for track in event["tracks"]:
            assert list(track) == [
                "track_id", "box", "landmarks", "person_id", "name", "confidence", "embedded",
            ]  # fmt: skip
    assert [e["ts"] for e in seen] == sorted(e["ts"] for e in seen)
    for key, truth in enrolled.items():
        ids, names = set(), []
        for event in seen:
            tracks = {t["track_id"]: t for t in event["tracks"]}
            matched = match_truth({key: truth.box}, [(tid, t["box"]) for tid, t in tracks.items()])
            assert key in matched, f"{key} not tracked on a frame of a still scene"
            ids.add(matched[key])
            names.append(tracks[matched[key]]["name"])
        assert len(ids) == 1, f"{key} changed track: {ids}"
        assert set(names[named_at:]) == {truth.who}, f"{key}'s name changed once given"
        assert set(names[:named_at]) <= {None, truth.who}, f"{key} was named someone else"
    stranger = [t for t in deployment.truth if t.who == UNKNOWN]
    for event in seen:
        boxes = [(t["track_id"], t["box"]) for t in event["tracks"]]
        matched = match_truth({t.key: t.box for t in stranger}, boxes)
        assert all(t["name"] is None for t in event["tracks"] if t["track_id"] in matched.values())


def test_the_camera_is_read_while_a_client_follows_it_and_let_go_within_10_s_of_it_leaving(
    deployment: Deployment,
) -> None:
    wait_until_let_go(deployment)
    accepted = deployment.front.accepted
    stream = open_stream(deployment)
    stream.events(3)
    assert deployment.front.open_now == 1 and watchers(deployment) == 1 and subscribers(deployment) == 1
    stream.close()
    left = time.monotonic()
    wait_until(lambda: watchers(deployment) == 0, LET_GO_S, "the stream's watch to end")
    wait_until(lambda: subscribers(deployment) == 0, 5, "the stream to unsubscribe")
    wait_until(lambda: deployment.front.open_now == 0, LET_GO_S, "the reader to close the camera")
    assert time.monotonic() - left <= LET_GO_S
    assert deployment.front.accepted == accepted + 1  # one connection for the whole stream


def test_the_fps_query_bounds_the_rate_and_is_itself_bounded(deployment: Deployment) -> None:
    stream = open_stream(deployment, fps=1)
    try:
        arrived = [at for at, _ in stream.events(4)]
    finally:
        stream.close()
    gaps = [later - earlier for earlier, later in zip(arrived, arrived[1:], strict=False)]
    assert min(gaps) >= 0.9, f"events {gaps} s apart at fps=1"
    for fps in (str(MAX_FPS + 1), "0", "-1", "many"):
        answer = requests.get(
            f"{deployment.api.url}/v1/cameras/{CAMERA}/events",
            params={"fps": fps},
            headers={"X-API-Key": ADMIN_KEY},
            timeout=10,
        )
        assert answer.status_code == 400, fps
        assert answer.json()["error"]["code"] == "invalid_input", fps


def test_the_key_goes_in_a_header_never_in_the_url(deployment: Deployment) -> None:
    url = f"{deployment.api.url}/v1/cameras/{CAMERA}/events"
    for params in ({}, {"api_key": ADMIN_KEY}, {"key": ADMIN_KEY}, {"X-API-Key": ADMIN_KEY}):
        answer = requests.get(url, params=params, timeout=10)
        assert answer.status_code == 401, params
        assert answer.json()["error"]["code"] == "unauthorized"
    missing = requests.get(
        f"{deployment.api.url}/v1/cameras/nowhere/events", headers={"X-API-Key": ADMIN_KEY}, timeout=10
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "camera_not_found"
    stream = open_stream(deployment, key=JOBS_KEY)  # the watch API's role: a jobs key follows cameras
    try:
        assert len(stream.events(1)) == 1
    finally:
        stream.close()


def test_an_api_process_serves_a_bounded_number_of_streams_and_stays_responsive(
    deployment: Deployment,
) -> None:
    url = deployment.api.url
    # The earlier tests' clients left; the server noticed each at its next write and freed its slot.
    wait_until(lambda: watchers(deployment) == 0, LET_GO_S, "the earlier streams to end")
    streams = [open_stream(deployment, DARK) for _ in range(MAX_STREAMS)]
    try:
        for stream in streams:  # a camera that sends nothing: its streams stay open on keepalives
            assert next(stream.blocks).startswith(b"retry: ")
            assert next(stream.blocks) == b": keepalive"
        full = requests.get(f"{url}/v1/cameras/{DARK}/events", headers={"X-API-Key": ADMIN_KEY}, timeout=10)
        assert full.status_code == 503 and full.json()["error"]["code"] == "too_many_event_streams"
        assert int(full.headers["Retry-After"]) >= 1
        # The streams hold 2 of the process's 4 threads: the rest of the API still answers.
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        cameras = requests.get(f"{url}/v1/cameras", headers={"X-API-Key": ADMIN_KEY}, timeout=5)
        assert cameras.status_code == 200
        streams.pop().close()

        def slot_free() -> bool:
            answer = requests.get(
                f"{url}/v1/cameras/{DARK}/events", headers={"X-API-Key": ADMIN_KEY}, stream=True, timeout=10
            )
            if answer.status_code == 200:
                streams.append(Stream(answer))
            return answer.status_code == 200

        wait_until(slot_free, 10, "the slot of the stream whose client left")
    finally:
        for stream in streams:
            stream.close()
    wait_until(lambda: watchers(deployment, DARK) == 0, LET_GO_S, "the dark camera's watches to end")
