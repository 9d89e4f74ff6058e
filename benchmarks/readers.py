"""Part ``readers``: what a stream reader costs and gives, with real reader processes started here.

Two readers (``celery -A tasks worker -Q rollcall.live``) on a private Redis, GStreamer's RTSP server
streaming a classroom-like scene (``two_people.jpg``) at 640×480 and 10 frames/s as H.264 (keyframe every
second), the camera live at the default ``ROLLCALL_LIVE_FPS``:

- ``frame``: a frame for a job or the page, the shared one (``FrameStore.latest``: one Redis round trip)
  against a cold RTSP fetch (``fetch_frame``, what a job paid before), back to back in this process;
- ``cpu``: CPU seconds per second the reader holding the camera spends (every frame decoded, the shared
  ones encoded as JPEG and written to Redis), from ``/proc``, against the idle reader beside it;
- ``handover_s``: seconds from SIGKILL of the reader holding the camera to the first frame the other one
  shares (the killed one is started again between rounds).
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import redis

from benchmarks.camera_servers import GstRtspCamera
from benchmarks.frames import read_photo, resize
from benchmarks.processes import ReaderProcess, start_reader, start_redis, wait_until
from live.demand import Demand
from live.framestore import FrameStore
from live.leases import Leases
from sources.camera import fetch_frame
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist

log = logging.getLogger(__name__)
CAMERA = "bench"
SCENE, SIZE = "two_people.jpg", "640x480"
LIMITS = FetchLimits(
    connect_timeout_s=3.0, read_timeout_s=10.0, total_s=13.0, max_bytes=20_000_000, retries=0
)


def run(kills: int = 3, fetches: int = 5, cpu_window_s: float = 10.0) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="rollcall-bench-readers-"))
    redis_process, port = start_redis(workdir / "redis")
    scene = workdir / "scene.jpg"
    cv2.imwrite(str(scene), resize(read_photo(SCENE), SIZE))
    gst = GstRtspCamera(scene).start()
    env = {
        **os.environ,
        "ROLLCALL_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "ROLLCALL_RESULT_BACKEND": f"redis://127.0.0.1:{port}/1",
        "ROLLCALL_DATABASE_URL": f"sqlite:///{workdir / 'facebank.db'}",
        "ROLLCALL_CAMERA_ALLOW": "127.0.0.1/32",
        "ROLLCALL_UI_CAMERAS": f"{CAMERA}={gst.url('/h264')}",
    }
    readers = {name: start_reader(name, env, workdir) for name in ("bench-reader-1", "bench-reader-2")}
    store = redis.Redis(port=port, db=1)
    frames = FrameStore(store, 5, 2_000_000)
    try:
        for reader in readers.values():
            reader.wait_ready()
        Demand(store).watch(CAMERA, "benchmark", 24 * 3600)
        wait_until(lambda: frames.latest(CAMERA, 1) is not None, 30, "the first shared frame")
        return {
            "fps": float(env.get("ROLLCALL_LIVE_FPS", 5.0)),
            "camera": {"size": SIZE, "frames_per_s": 10, "keyframe_interval_s": 1.0, "codec": "h264"},
            "frame": _frame(frames, gst, fetches),
            "cpu": _cpu(store, readers, cpu_window_s),
            "handover_s": _handovers(store, frames, readers, env, workdir, kills),
        }
    finally:
        for reader in readers.values():
            reader.stop()
        gst.stop()
        redis_process.stop()


def _frame(frames: FrameStore, gst: GstRtspCamera, fetches: int) -> dict[str, Any]:
    shared_ms, fetched_ms = [], []
    allow = CameraAllowlist.parse("127.0.0.1/32")
    for _ in range(fetches):  # alternated, so both meet the same machine load
        started = time.perf_counter()
        shared = frames.latest(CAMERA, 2)
        shared_ms.append((time.perf_counter() - started) * 1000)
        assert shared is not None, "the reader stopped sharing frames"
        fetched_ms.append(fetch_frame(CameraEndpoint(gst.url("/h264")), allow, LIMITS).elapsed_s * 1000)
    shared_median, fetched_median = statistics.median(shared_ms), statistics.median(fetched_ms)
    log.info("readers: shared frame %.2f ms, cold RTSP fetch %.0f ms", shared_median, fetched_median)
    return {
        "shared_ms": [round(x, 2) for x in shared_ms],
        "rtsp_fetch_ms": [round(x, 1) for x in fetched_ms],
        "shared_median_ms": round(shared_median, 2),
        "rtsp_fetch_median_ms": round(fetched_median, 1),
        "speedup": round(fetched_median / shared_median, 1),
    }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _cpu(store: redis.Redis, readers: dict[str, ReaderProcess], window_s: float) -> dict[str, float]:
    holder = Leases(store, "benchmark", 5).holder(CAMERA)
    reading = next(r for r in readers.values() if r.node == holder)
    idle = next(r for r in readers.values() if r is not reading)
    before = {r.name: _cpu_seconds(r.pid) for r in (reading, idle)}
    time.sleep(window_s)
    used = {r.name: (_cpu_seconds(r.pid) - before[r.name]) / window_s for r in (reading, idle)}
    log.info("readers: %.3f CPU s/s reading one camera, %.3f idle", used[reading.name], used[idle.name])
    return {
        "reading_one_camera_cpu_s_per_s": round(used[reading.name], 3),
        "idle_reader_cpu_s_per_s": round(used[idle.name], 3),
    }


def _handovers(
    store: redis.Redis,
    frames: FrameStore,
    readers: dict[str, ReaderProcess],
    env: dict[str, str],
    workdir: Path,
    kills: int,
) -> list[float]:
    seconds = []
    for _ in range(kills):
        holder = Leases(store, "benchmark", 5).holder(CAMERA)
        victim = next(r for r in readers.values() if r.node == holder)
        victim.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        killed = time.monotonic()

        def other_shares(victim: ReaderProcess = victim) -> bool:
            shared = frames.latest(CAMERA, 1)
            return shared is not None and shared.reader != victim.node

        wait_until(other_shares, 30, "the other reader's frames")
        seconds.append(round(time.monotonic() - killed, 2))
        log.info("readers: handed over in %.2f s", seconds[-1])
        victim.stop()
        readers[victim.name] = start_reader(victim.name, env, workdir)
        readers[victim.name].wait_ready()
    return seconds
