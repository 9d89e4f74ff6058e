"""One live camera read by this reader: a thread on one stream, frames handed on at the configured rate.

While the reader holds the camera's lease, its feed keeps a connection open (``sources.stream``),
takes frames at ``ROLLCALL_LIVE_FPS`` (a camera sending more is still read in full: an RTSP stream
must be decoded frame after frame), shares each one through Redis (``live.framestore``) and hands
it to the processing (``live.dispatch``) when there is one. A stream that breaks, or cannot be
opened, is opened again after a pause that doubles from 1 s up to ``ROLLCALL_LIVE_RECONNECT_MAX_S``;
the error's code (``camera_unreachable``, ``camera_auth_failed``…) goes to the log, the metrics and
the camera's status (``live.status``). The camera is looked up again every few seconds, so a changed
URL or password takes effect and a deleted camera stops being read.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import redis

import errors
from live.framestore import FrameStore
from live.metrics import live_metrics
from live.status import CameraStatus, State, StatusBoard
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist
from sources.stream import FrameStream, StreamFrame, open_stream

log = logging.getLogger("rollcall.live")

FIRST_PAUSE_S = 1.0
RESOLVE_EVERY_S = 5.0  # how often a reading feed looks its camera up again (a changed URL, a deletion)
STEADY_S = 10.0  # a stream that ran this long resets the pause to FIRST_PAUSE_S when it breaks
STATUS_EVERY_S = 1.0
JOIN_S = 5.0

# What a feed hands a decoded frame to: (camera, BGR image, decode time, frame number).
FrameSink = Callable[[str, np.ndarray, float, int], None]
StreamOpener = Callable[[CameraEndpoint, CameraAllowlist, FetchLimits, float], FrameStream]


@dataclass(frozen=True)
class FeedConfig:
    """What every feed of a reader shares."""

    reader_id: str
    fps: float
    reconnect_max_s: float
    status_ttl_s: float  # how long a status report lives (the lease's TTL: a dead reader's fades with it)
    allowlist: CameraAllowlist
    limits: FetchLimits
    resolve_every_s: float = RESOLVE_EVERY_S


class CameraFeed:
    """Reads ``camera`` on a thread of its own until ``close``; the thread ends by itself only when the
    camera was deleted (``gone``) or on a bug (logged)."""

    def __init__(
        self,
        camera: str,
        config: FeedConfig,
        resolve: Callable[[str], CameraEndpoint],
        frames: FrameStore,
        board: StatusBoard,
        sink: FrameSink | None = None,
        opener: StreamOpener = open_stream,
    ) -> None:
        self.camera = camera
        self.started = time.time()
        self.frame_no = 0
        self.gone = False
        self._config = config
        self._resolve = resolve
        self._frames = frames
        self._board = board
        self._sink = sink
        self._opener = opener
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stream: FrameStream | None = None
        self._state: State = "connecting"
        self._state_since = time.time()
        self._reported = 0.0
        self._redis_down = False
        self._thread = threading.Thread(target=self._run, name=f"live-{camera}", daemon=True)

    # --- control, from the reader's thread ---
    def start(self) -> CameraFeed:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop reading now: the connection is shut down at once (the thread ends shortly after)."""
        with self._lock:
            self._stopping.set()
            stream = self._stream
        if stream is not None:
            stream.close()

    def join(self, timeout_s: float = JOIN_S) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning(
                "live camera %s: its feed did not end within %.1f s of being closed", self.camera, timeout_s
            )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def describe(self) -> dict[str, object]:
        return {
            "state": self._state,
            "since": self._state_since,
            "frames": self.frame_no,
            "started": self.started,
        }

    # --- the feed's thread ---
    def _run(self) -> None:
        try:
            self._read_until_stopped()
        except Exception:  # a bug: logged with its traceback; the reader gives the camera up for a while
            log.exception("live camera %s: its feed failed", self.camera)

    def _read_until_stopped(self) -> None:
        pause = FIRST_PAUSE_S
        while not self._stopping.is_set():
            opened = time.monotonic()
            try:
                endpoint = self._resolve(self.camera)
                self._run_stream(endpoint)
            except errors.CameraNotFound:
                log.info("live camera %s was deleted: it is no longer read", self.camera)
                self.gone = True
                return
            except errors.RollcallError as exc:
                if self._stopping.is_set():
                    return
                if time.monotonic() - opened >= STEADY_S:
                    pause = FIRST_PAUSE_S
                wait = pause * random.uniform(0.75, 1.0)  # jitter: cameras behind one switch do not stampede
                pause = min(pause * 2, self._config.reconnect_max_s)
                live_metrics().reconnects.labels(camera=self.camera, code=exc.code).inc()
                log.warning(
                    "live camera %s: %s: %s; connecting again in %.1f s",
                    self.camera,
                    exc.code,
                    exc.message,
                    wait,
                )
                self._report("retrying", exc, time.time() + wait, ttl_s=wait + self._config.status_ttl_s)
                self._stopping.wait(wait)

    def _run_stream(self, endpoint: CameraEndpoint) -> None:
        """Read one stream of ``endpoint`` until it is closed, breaks (raises), or the camera changed."""
        stream = self._opener(endpoint, self._config.allowlist, self._config.limits, 1 / self._config.fps)
        with self._lock:
            if self._stopping.is_set():
                return
            self._stream = stream
        self._report("connecting")
        try:
            self._take_frames(stream, endpoint)
        finally:
            stream.close()

    def _take_frames(self, stream: FrameStream, endpoint: CameraEndpoint) -> None:
        interval = 1 / self._config.fps
        tolerance = interval / 4  # a frame arriving a little early still counts for its slot
        due = 0.0
        check_at = time.monotonic() + self._config.resolve_every_s
        decoded = live_metrics().frames.labels(camera=self.camera, outcome="decoded")
        for frame in stream.frames():
            if self._stopping.is_set():
                return
            decoded.inc()
            now = time.monotonic()
            if now >= check_at:
                check_at = now + self._config.resolve_every_s
                if self._changed(endpoint):
                    return
            if now + tolerance < due:
                continue
            due = max(due + interval, now - interval / 2)
            self._hand_on(frame)

    def _changed(self, endpoint: CameraEndpoint) -> bool:
        """Whether the registry no longer gives ``endpoint`` for the camera (``CameraNotFound``: deleted)."""
        try:
            current = self._resolve(self.camera)
        except errors.CameraNotFound:
            raise
        except errors.RollcallError as exc:  # the database is away: keep reading what we have
            log.warning("live camera %s: cannot look it up again (%s); reading on", self.camera, exc.code)
            return False
        if current != endpoint:
            log.info("live camera %s changed in the registry: connecting again", self.camera)
            return True
        return False

    def _hand_on(self, frame: StreamFrame) -> None:
        """Share ``frame`` and give it to the processing."""
        self.frame_no += 1
        counts = live_metrics().frames
        try:
            data = frame.jpeg()
            self._frames.publish(
                self.camera, data, frame.ts, self.frame_no, frame.width, frame.height, self._config.reader_id
            )
            counts.labels(camera=self.camera, outcome="shared").inc()
            self._redis_up()
        except errors.FrameTooLarge as exc:
            counts.labels(camera=self.camera, outcome="dropped").inc()
            log.warning("live camera %s: frame not shared: %s", self.camera, exc.message)
        except redis.RedisError as exc:
            self._redis_failed(exc)
        if self._sink is not None:
            self._sink(self.camera, frame.image(), frame.ts, self.frame_no)
        if self._state != "reading" or time.monotonic() - self._reported >= STATUS_EVERY_S:
            self._report("reading")

    # --- status ---
    def _report(
        self,
        state: State,
        error: errors.RollcallError | None = None,
        retry_at: float | None = None,
        ttl_s: float | None = None,
    ) -> None:
        if state != self._state:
            self._state, self._state_since = state, time.time()
        status = CameraStatus(
            camera=self.camera,
            reader=self._config.reader_id,
            state=state,
            since=self._state_since,
            frames=self.frame_no,
            error_code=error.code if error is not None else None,
            error_message=error.message if error is not None else None,
            retry_at=retry_at,
        )
        self._reported = time.monotonic()
        try:
            self._board.report(status, ttl_s or self._config.status_ttl_s)
            self._redis_up()
        except redis.RedisError as exc:
            self._redis_failed(exc)

    def _redis_failed(self, exc: redis.RedisError) -> None:
        if not self._redis_down:  # once per outage, not five times a second
            log.warning("live camera %s: Redis is unreachable (%s); frames are not shared", self.camera, exc)
        self._redis_down = True

    def _redis_up(self) -> None:
        if self._redis_down:
            log.info("live camera %s: Redis answers again; sharing frames", self.camera)
        self._redis_down = False
