"""Part ``cameras``: what a camera's protocol costs a job, against real servers started here.

- ``rtsp_first_frame_s``: cold RTSP fetches through ``sources.camera.fetch_frame`` (new connection,
  relay, FFmpeg, first decodable frame) from GStreamer's RTSP server streaming at 10 frames/s with a
  keyframe every ``keyframe_interval_s``; beside it, the same stream opened directly (no relay) by
  PyAV and by OpenCV's FFmpeg backend with the same options, back to back in this process.
- ``snapshot``: HTTP snapshots from Apache httpd, open, Basic and Digest (MD5), and from lighttpd with
  Digest SHA-256: requests per fetch and time, for the first fetch of the process and the later ones.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from typing import Any

from benchmarks.camera_servers import (
    AXIS,
    CAMERA_PASSWORD,
    CAMERA_USER,
    HIKVISION,
    OPEN,
    ApacheCamera,
    GstRtspCamera,
    LighttpdCamera,
)
from sources.camera import fetch_frame
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist
from sources.rtsp_camera import FFMPEG_OPTIONS

log = logging.getLogger(__name__)
ALLOW = CameraAllowlist.parse("127.0.0.1/32")
LIMITS = FetchLimits(
    connect_timeout_s=3.0, read_timeout_s=10.0, total_s=13.0, max_bytes=20_000_000, retries=0
)
CREDENTIALS = (CAMERA_USER, CAMERA_PASSWORD)


def run(rtsp_fetches: int = 5, snapshots: int = 20) -> dict[str, Any]:
    apache, lighttpd, gst = ApacheCamera().start(), LighttpdCamera().start(), GstRtspCamera().start()
    try:
        return {
            "keyframe_interval_s": GstRtspCamera.KEYFRAME_INTERVAL_S,
            "frame_rate": 10,
            "rtsp": _rtsp(gst, rtsp_fetches),
            "snapshot": _snapshots(apache, lighttpd, snapshots),
        }
    finally:
        for server in (gst, lighttpd, apache):
            server.stop()


def _rtsp(gst: GstRtspCamera, fetches: int) -> dict[str, Any]:
    sources = {
        "h264": CameraEndpoint(gst.url("/h264")),
        "h265": CameraEndpoint(gst.url("/h265")),
        "h264_digest": CameraEndpoint(gst.url("/h264", secure=True, credentials=CREDENTIALS)),
    }
    found: dict[str, Any] = {}
    for name, endpoint in sources.items():
        times, round_trips = [], []
        for _ in range(fetches):
            trace = FetchTrace()
            times.append(fetch_frame(endpoint, ALLOW, LIMITS, trace).elapsed_s)
            round_trips.append(trace.round_trips)
        found[name] = {"first_frame_s": _summary(times), "rtsp_requests": round_trips}
        log.info(
            "cameras: rtsp %s first frame %.3f s (median of %d)", name, statistics.median(times), fetches
        )
    url = gst.url("/h264")
    direct: dict[str, list[float]] = {"pyav": [], "opencv": []}
    for _ in range(fetches):  # alternated, so both meet the same machine load
        direct["pyav"].append(_pyav_first_frame(url))
        direct["opencv"].append(_opencv_first_frame(url))
    found["h264_direct_no_relay"] = {library: _summary(times) for library, times in direct.items()}
    return found


def _pyav_first_frame(url: str) -> float:
    import av

    started = time.perf_counter()
    with av.open(url, options=FFMPEG_OPTIONS, timeout=(10, 10)) as container:
        for packet in container.demux(container.streams.video[0]):
            if packet.decode():
                break
    return time.perf_counter() - started


def _opencv_first_frame(url: str) -> float:
    import cv2

    # OpenCV takes FFmpeg's options only from this process-wide variable (one reason PyAV was chosen).
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join(f"{k};{v}" for k, v in FFMPEG_OPTIONS.items())
    started = time.perf_counter()
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    try:
        ok, _ = capture.read()
    finally:
        capture.release()
        del os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"]
    if not ok:
        raise RuntimeError(f"OpenCV read no frame from {url}")
    return time.perf_counter() - started


def _snapshots(apache: ApacheCamera, lighttpd: LighttpdCamera, fetches: int) -> dict[str, Any]:
    sources = {
        "open": CameraEndpoint(apache.url(OPEN)),
        "basic": CameraEndpoint(apache.url(AXIS, credentials=CREDENTIALS)),
        "digest-md5": CameraEndpoint(apache.url(HIKVISION, credentials=CREDENTIALS)),
        "digest-sha256": CameraEndpoint(lighttpd.url(), username=CAMERA_USER, password=CAMERA_PASSWORD),
    }
    found: dict[str, Any] = {}
    for name, endpoint in sources.items():
        first = FetchTrace()
        first_s = fetch_frame(endpoint, ALLOW, LIMITS, first).elapsed_s
        later_times, later_trips = [], []
        for _ in range(fetches):
            trace = FetchTrace()
            later_times.append(fetch_frame(endpoint, ALLOW, LIMITS, trace).elapsed_s)
            later_trips.append(trace.round_trips)
        found[name] = {
            "auth": first.auth,
            "first_fetch": {"requests": first.round_trips, "ms": round(first_s * 1000, 2)},
            "later_fetches": {"requests": max(later_trips), "ms": _summary(later_times, scale=1000)},
        }
    basic, digest = (
        found["basic"]["later_fetches"]["requests"],
        found["digest-md5"]["later_fetches"]["requests"],
    )
    found["digest_extra_requests_over_basic_after_the_first"] = digest - basic
    return found


def _summary(values: list[float], scale: float = 1.0) -> dict[str, float]:
    ordered = [value * scale for value in sorted(values)]
    return {
        "median": round(statistics.median(ordered), 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
        "n": len(ordered),
    }
