"""Stream readers as they run: real reader processes (``celery -A tasks worker -Q rollcall.live``), the real
API, a real model worker, real Redis, and GStreamer's RTSP server behind a counting proxy (the camera's
own view of who connects).

What a user would notice: a reader killed mid-stream (SIGKILL) hands its camera to the other within
10 s, and the camera never has two readers at once; a camera stops being read within 10 s of its last
watcher leaving; a job by camera name and the page's frame endpoint take the shared frame in
milliseconds, with no new connection to the camera; the readers answer Celery's inspect and show
their cameras in /metrics.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from benchmarks.camera_servers import GstRtspCamera
from benchmarks.processes import ReaderProcess, free_port, start_reader
from live.framestore import FrameStore
from live.leases import Leases, lease_log
from ml.image import decode_image
from settings import get_settings
from tests.cameras.proxy import CountingProxy
from tests.conftest import WorkerProcess, wait_for_job, wait_until
from tests.ops.conftest import sample, scrape
from webapi.jobqueue import celery_client

pytestmark = pytest.mark.integration
HANDOVER_S = 10.0


@pytest.fixture(scope="module")
def live_store() -> redis.Redis:
    """The Redis the default system keeps live cameras in (its result backend)."""
    return redis.Redis.from_url(os.environ["ROLLCALL_RESULT_BACKEND"])


@pytest.fixture(scope="module")
def live_readers(
    redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ReaderProcess]]:
    """Two stream readers of the default system, each serving /metrics (started together, stopped at the
    end)."""
    log_dir = tmp_path_factory.mktemp("readers")
    readers = []
    for name in ("live-a", "live-b"):
        env = {**os.environ, "ROLLCALL_WORKER_METRICS_PORT": str(free_port())}
        readers.append(start_reader(name, env, log_dir))
    for reader in readers:
        reader.wait_ready()
    yield readers
    for reader in readers:
        reader.stop()


def _register(client: Any, name: str, front: CountingProxy, path: str = "/h264") -> None:
    response = client.post("/v1/cameras", json={"name": name, "url": f"rtsp://127.0.0.1:{front.port}{path}"})
    assert response.status_code == 201, response.get_json()


def _watch(client: Any, name: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/cameras/{name}/watch", json=body)
    assert response.status_code == 200, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def _holder(store: redis.Redis, camera: str) -> str | None:
    return Leases(store, "test", 5).holder(camera)


def test_a_reader_killed_mid_stream_hands_its_camera_over_and_never_two_read_it(
    client: Any,
    live_store: redis.Redis,
    live_readers: list[ReaderProcess],
    gst_camera: GstRtspCamera,
    proxy: Callable[[int], CountingProxy],
) -> None:
    front = proxy(gst_camera.port)
    _register(client, "live-kill", front)
    _watch(client, "live-kill", ttl_s=60)
    frames = FrameStore(live_store, 5, 2_000_000)
    wait_until(lambda: frames.latest("live-kill", 1) is not None, 30, "the camera's first shared frame")
    holder = _holder(live_store, "live-kill")
    victim = next(reader for reader in live_readers if reader.node == holder)
    survivor = next(reader for reader in live_readers if reader is not victim)

    victim.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    killed = time.monotonic()

    def served_by_survivor() -> bool:
        shared = frames.latest("live-kill", 1)
        return shared is not None and shared.reader == survivor.node

    wait_until(served_by_survivor, HANDOVER_S + 5, "the survivor's frames")
    handover_s = time.monotonic() - killed
    victim.stop()
    assert handover_s <= HANDOVER_S, f"handed over after {handover_s:.1f} s"
    assert _holder(live_store, "live-kill") == survivor.node
    taken = [e for e in lease_log(live_store) if e["camera"] == "live-kill" and e["event"] == "took-over"]
    assert taken == [
        {"camera": "live-kill", "reader": survivor.node, "event": "took-over", "from": victim.node}
    ]
    assert front.most_at_once() == 1  # the camera never saw two readers
    assert front.accepted == 2
    answer = _watch(client, "live-kill", ttl_s=1)
    assert answer["reader"]["reader"] == survivor.node and answer["reader"]["state"] == "reading"
    assert answer["frame"]["width"] == 320 and answer["frame"]["age_ms"] < 1000


def test_a_camera_stops_being_read_within_seconds_of_its_last_watcher_leaving(
    client: Any,
    live_readers: list[ReaderProcess],
    gst_camera: GstRtspCamera,
    proxy: Callable[[int], CountingProxy],
) -> None:
    front = proxy(gst_camera.port)
    _register(client, "live-leave", front, "/h265")
    page = _watch(client, "live-leave", ttl_s=60)
    _watch(client, "live-leave", watcher_id="kiosk", ttl_s=4)
    wait_until(lambda: front.open_now == 1, 20, "a reader to connect")
    assert client.delete(f"/v1/cameras/live-leave/watch/{page['watcher_id']}").status_code == 204
    time.sleep(1.5)
    assert front.open_now == 1  # the kiosk still watches
    expires = time.monotonic() + 4 - 1.5  # the kiosk's watch runs out then, unrenewed
    wait_until(lambda: front.open_now == 0, HANDOVER_S + 5, "the camera's connection to close")
    stopped_after_s = (front.last_closed() or 0) - expires
    assert stopped_after_s <= HANDOVER_S, f"read {stopped_after_s:.1f} s after its last watch ended"
    assert front.accepted == 1


def test_a_job_by_camera_name_and_the_frame_endpoint_take_the_shared_frame(
    client: Any,
    worker: WorkerProcess,
    live_store: redis.Redis,
    live_readers: list[ReaderProcess],
    gst_camera: GstRtspCamera,
    proxy: Callable[[int], CountingProxy],
) -> None:
    front = proxy(gst_camera.port)
    _register(client, "live-job", front)
    fetched = client.get("/v1/cameras/live-job/frame")  # nobody reads it yet: fetched, and now watched
    assert fetched.status_code == 200 and fetched.headers["X-Frame-Source"] == "camera"
    frames = FrameStore(live_store, 5, 2_000_000)
    wait_until(lambda: frames.latest("live-job", 1) is not None, 30, "the camera's first shared frame")
    connections = front.accepted
    assert connections == 2  # the endpoint's own fetch, then the reader

    shared = client.get("/v1/cameras/live-job/frame")
    assert shared.status_code == 200 and shared.headers["X-Frame-Source"] == "live"
    assert int(shared.headers["X-Frame-Age-Ms"]) <= 2000
    assert decode_image(shared.data, 40_000_000).shape == (240, 320, 3)
    job = client.post("/v1/jobs/detect", json={"camera": "live-job"})
    assert job.status_code == 202, job.get_json()
    done = wait_for_job(client, job.get_json()["job_id"])
    assert done["state"] == "succeeded", done
    assert len(done["result"]["faces"]) == 1
    assert done["result"]["timings_ms"]["fetch"] < 500  # an RTSP fetch costs a keyframe interval (~1 s)
    assert front.accepted == connections  # neither opened a connection of its own

    holder = _holder(live_store, "live-job")
    reader = next(reader for reader in live_readers if reader.node == holder)
    control = celery_client(get_settings()).control
    for command in ("rollcall_live", "stats"):  # Flower shows a worker's stats
        replies = control.broadcast(command, destination=[reader.node], reply=True, timeout=10)
        answer = next(reply[reader.node] for reply in replies if reader.node in reply)
        live = answer if command == "rollcall_live" else answer["live"]
        assert live["cameras"]["live-job"]["state"] == "reading", command
    port = reader.env["ROLLCALL_WORKER_METRICS_PORT"]
    samples = scrape(f"http://127.0.0.1:{port}/metrics")
    assert sample(samples, "rollcall_live_frames_total", camera="live-job", outcome="shared") > 0
    assert sample(samples, "rollcall_live_cameras", state="held") >= 1
