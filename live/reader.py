"""A stream reader: takes its fair share of the live cameras, reads each one, and lets go of the rest.

Every reader process runs one ``Reader``. About once a second (a third of the lease TTL at most) it

1. beats its heartbeat, which tells it how many readers are alive;
2. renews the leases of the cameras it reads, and stops reading any it could not renew in time;
3. asks which cameras are live (``live.demand``) and lets go of those no longer watched (their
   stream closed, their lease released: another reader may take them at once);
4. takes free live cameras, up to its share: the live cameras divided by the readers alive, rounded
   up, and at most ``ROLLCALL_LIVE_MAX_CAMERAS``; a reader holding more than its share (another
   reader just started) lets go of one per round, which the newcomer then takes.

A camera whose reader died is taken by another once its lease has run out (``ROLLCALL_LIVE_LEASE_TTL_S``)
and the dead reader's heartbeat with it, within a round after that. Each camera read is a
``live.feed.CameraFeed``; when a frame processor is configured, their frames go through one
``live.dispatch.Dispatcher``.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from live.demand import Demand
from live.dispatch import Dispatcher, EventPublisher, NewProcessor
from live.feed import CameraFeed, FeedConfig, StreamOpener
from live.framestore import FrameStore
from live.leases import Lease, Leases
from live.metrics import live_metrics
from live.processing import LiveSink
from live.status import StatusBoard
from settings import Settings
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.stream import open_stream

log = logging.getLogger("rollcall.live")
# How long a reader letting go of a camera waits for its processor's close (the frame being processed,
# then the ended tracks written to every sink) before it releases the lease anyway.
PROCESSOR_CLOSE_WAIT_S = 5.0

COOL_DOWN_S = 30.0  # a camera whose feed ended by itself (deleted, a bug) is not taken again before this


@dataclass(frozen=True)
class ReaderConfig:
    """A reader's settings (``ROLLCALL_LIVE_*`` and the camera fetch limits)."""

    feed: FeedConfig
    lease_ttl_s: float
    max_cameras: int  # 0: no limit but the share
    frame_ttl_s: float
    frame_max_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, reader_id: str) -> ReaderConfig:
        feed = FeedConfig(
            reader_id=reader_id,
            fps=settings.live_fps,
            reconnect_max_s=settings.live_reconnect_max_s,
            status_ttl_s=settings.live_lease_ttl_s,
            allowlist=settings.camera_allow,
            limits=FetchLimits.from_settings(settings),
        )
        return cls(
            feed=feed,
            lease_ttl_s=settings.live_lease_ttl_s,
            max_cameras=settings.live_max_cameras,
            frame_ttl_s=settings.live_frame_ttl_s,
            frame_max_bytes=settings.live_frame_max_bytes,
        )

    @property
    def round_s(self) -> float:
        """How often the reader renews, looks at the demand and rebalances."""
        return min(1.0, self.lease_ttl_s / 3)


class Reader:
    """Reads this process's share of the live cameras until ``stop``."""

    def __init__(
        self,
        client: redis.Redis,
        config: ReaderConfig,
        resolve: Callable[[str], CameraEndpoint],
        processors: NewProcessor | None = None,
        opener: StreamOpener = open_stream,
        sinks: Sequence[LiveSink] = (),
    ) -> None:
        self.reader_id = config.feed.reader_id
        self.config = config
        self.leases = Leases(client, self.reader_id, config.lease_ttl_s)
        self._demand = Demand(client)
        self._frames = FrameStore(client, config.frame_ttl_s, config.frame_max_bytes)
        self._board = StatusBoard(client)
        self._resolve = resolve
        self._opener = opener
        # The event channel first (the page's stream), then the deployment's other sinks (MQTT, webhooks,
        # sessions).
        every_sink = [EventPublisher(client), *sinks]
        self._dispatcher = Dispatcher(processors, every_sink) if processors is not None else None
        self._held: dict[str, tuple[Lease, CameraFeed]] = {}
        self._cooling: dict[str, float] = {}  # camera → monotonic time it may be taken again
        self._readers = 1
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-reader", daemon=True)

    def start(self) -> Reader:
        if self._dispatcher is not None:
            self._dispatcher.start()
        self._thread.start()
        log.info(
            "stream reader %s started: %g frames/s per camera, lease TTL %g s",
            self.reader_id,
            self.config.feed.fps,
            self.config.lease_ttl_s,
        )
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop reading: every stream closed, every lease released, the heartbeat withdrawn."""
        self._stopping.set()
        self._thread.join(timeout_s)
        if self._dispatcher is not None:
            self._dispatcher.stop()

    def describe(self) -> dict[str, Any]:
        """What ``celery inspect stats`` and ``rollcall_live`` show of this reader."""
        cameras = {
            name: {**feed.describe(), "took_over_from": lease.took_over_from}
            for name, (lease, feed) in self._held.copy().items()
        }
        return {
            "reader": self.reader_id,
            "readers_alive": self._readers,
            "fps": self.config.feed.fps,
            "processing": self._dispatcher is not None,
            "cameras": cameras,
        }

    # --- the reader's thread ---
    def _run(self) -> None:
        try:
            wait = 0.0
            while not self._stopping.wait(wait):
                wait = self.config.round_s
                try:
                    self._round()
                except redis.RedisError as exc:
                    log.warning("stream reader %s: Redis does not answer (%s)", self.reader_id, exc)
                    self._drop_expiring()
        except Exception:  # a bug: logged; the leases are given back below and the others take the cameras
            log.exception("stream reader %s failed", self.reader_id)
        finally:
            self._let_go_of_all()

    def _round(self) -> None:
        self._readers = self.leases.heartbeat()
        self._renew()
        live = set(self._demand.live_cameras())
        for camera, (_, feed) in list(self._held.items()):
            if camera not in live:
                self._let_go(camera, "not watched")
            elif not feed.alive:
                self._let_go(camera, "deleted" if feed.gone else "its feed failed")
                self._cooling[camera] = time.monotonic() + COOL_DOWN_S
        share = math.ceil(len(live) / self._readers)
        if self.config.max_cameras:
            share = min(share, self.config.max_cameras)
        if len(self._held) > share:
            newest = max(self._held, key=lambda name: self._held[name][1].started)
            self._let_go(
                newest, f"over its share of {share} ({len(live)} live cameras, {self._readers} readers)"
            )
        now = time.monotonic()
        free = [camera for camera in live if camera not in self._held and self._cooling.get(camera, 0) <= now]
        random.shuffle(free)  # readers starting together try different cameras first
        for camera in free:
            if len(self._held) >= share:
                break
            lease = self.leases.acquire(camera)
            if lease is not None:
                self._take(lease)
        live_metrics().cameras.labels(state="held").set(len(self._held))

    def _renew(self) -> None:
        for camera, (lease, _) in list(self._held.items()):
            if not self.leases.renew(lease):
                log.error(
                    "stream reader %s lost camera %s: its lease ran out before renewal",
                    self.reader_id,
                    camera,
                )
                live_metrics().handovers.labels(direction="lost").inc()
                self._stop_feed(camera)
                self.leases.lost(lease)

    def _drop_expiring(self) -> None:
        """Redis does not answer: stop reading every camera whose lease may run out before the next round,
        since another reader may take it then (leases are not released: Redis cannot be reached)."""
        for camera, (lease, _) in list(self._held.items()):
            if lease.expiring(2 * self.config.round_s):
                log.error(
                    "stream reader %s stops reading %s: its lease cannot be renewed", self.reader_id, camera
                )
                live_metrics().handovers.labels(direction="lost").inc()
                self._stop_feed(camera)

    def _take(self, lease: Lease) -> None:
        camera = lease.camera
        if lease.took_over_from is not None:
            live_metrics().handovers.labels(direction="taken").inc()
            log.warning(
                "stream reader %s took camera %s over from %s, which stopped renewing its lease",
                self.reader_id,
                camera,
                lease.took_over_from,
            )
        else:
            log.info("stream reader %s reads camera %s", self.reader_id, camera)
        sink = self._dispatcher.offer if self._dispatcher is not None else None
        feed = CameraFeed(
            camera, self.config.feed, self._resolve, self._frames, self._board, sink, self._opener
        )
        self._held[camera] = (lease, feed.start())

    def _let_go(self, camera: str, why: str) -> None:
        """Stop reading ``camera`` and release its lease (after its connection is closed)."""
        lease, _ = self._held[camera]
        self._stop_feed(camera)
        self.leases.release(lease)
        self._frames.forget(camera)
        self._board.clear(camera)
        log.info("stream reader %s let go of camera %s: %s", self.reader_id, camera, why)

    def _stop_feed(self, camera: str) -> None:
        _, feed = self._held.pop(camera)
        feed.close()
        feed.join()
        if self._dispatcher is not None:
            # Its ended tracks reach the sinks before its lease goes: a session closing after the lease is
            # gone finds them written.
            closed = self._dispatcher.close_camera(camera)
            if not closed.wait(PROCESSOR_CLOSE_WAIT_S):
                log.warning(
                    "live camera %s: its processor did not close within %.0f s; its lease goes anyway",
                    camera,
                    PROCESSOR_CLOSE_WAIT_S,
                )

    def _let_go_of_all(self) -> None:
        feeds = [feed for _, feed in self._held.values()]
        for feed in feeds:  # every connection shut at once, then each lease released
            feed.close()
        for camera in list(self._held):
            try:
                self._let_go(camera, "the reader stops")
            except redis.RedisError as exc:  # its lease runs out by itself
                log.warning(
                    "stream reader %s: camera %s not released (Redis: %s)", self.reader_id, camera, exc
                )
        try:
            self.leases.leave()
        except redis.RedisError as exc:  # the heartbeat runs out by itself
            log.warning("stream reader %s: heartbeat not withdrawn (Redis: %s)", self.reader_id, exc)
        live_metrics().cameras.labels(state="held").set(0)
        log.info("stream reader %s stopped", self.reader_id)
