"""The app's services: created once by ``create_app``, handed out to the blueprints from here.

A view reaches the settings, the facebank, the job client (which holds the Redis connection and the
per-key limits), the live cameras' state and the attendance sessions through these functions, never
through another blueprint.
They live in ``app.extensions`` under ``rollcall.*``, so each app (a test builds several) has its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import redis
from flask import Flask, current_app

from errors import TooManyEventStreams
from facebank.cameras import CameraDirectory
from facebank.passwords import cipher_of
from facebank.sessions import AttendanceSessions
from facebank.store import Facebank
from live import keys
from live.demand import Demand
from live.framestore import FrameStore, SharedFrame
from live.status import StatusBoard
from settings import Settings
from webapi.jobclient import JobClient
from webapi.jobqueue import celery_client

log = logging.getLogger("rollcall.api")


class StreamSlots:
    """The event streams one API process serves at once (``ROLLCALL_LIVE_EVENTS_MAX_STREAMS``): each holds
    one of its threads while its client stays, so they may never take all of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        """Count one more stream; ``TooManyEventStreams`` when every slot is in use."""
        with self._lock:
            if self.limit and self.open >= self.limit:
                raise TooManyEventStreams(
                    f"this API process serves {self.limit} event streams already "
                    "(ROLLCALL_LIVE_EVENTS_MAX_STREAMS); try again soon"
                )
            self.open += 1

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


@dataclass(frozen=True)
class LiveCameras:
    """What the API reads and writes of live cameras (``live``): watches, shared frames, readers' status,
    and the event streams it serves (their Redis client and slots)."""

    client: redis.Redis
    demand: Demand
    frames: FrameStore
    status: StatusBoard
    streams: StreamSlots

    @classmethod
    def for_settings(cls, settings: Settings) -> LiveCameras:
        client = keys.connect(settings)
        frames = FrameStore(client, settings.live_frame_ttl_s, settings.live_frame_max_bytes)
        slots = StreamSlots(settings.live_events_max_streams)
        return cls(client, Demand(client), frames, StatusBoard(client), slots)

    def frame_for_viewer(self, camera: str, viewer: str, settings: Settings) -> SharedFrame | None:
        """``camera``'s fresh shared frame, for someone viewing it (the page's frame endpoint), who keeps
        the camera live for ``ROLLCALL_LIVE_WATCH_TTL_S`` more seconds; None: fetch it from the camera.

        Redis not answering is no reason to show no frame: the caller fetches it from the camera then.
        """
        try:
            self.demand.watch(camera, f"{viewer}/frame", settings.live_watch_ttl_s)
            return self.frames.latest(camera, settings.live_frame_fresh_s)
        except redis.RedisError as exc:
            log.warning("live camera %s: no shared frame (Redis: %s); fetching from the camera", camera, exc)
            return None


def install_services(app: Flask, settings: Settings) -> None:
    """Create the app's services for ``settings`` (the facebank's schema must be current)."""
    app.extensions["rollcall.settings"] = settings
    app.extensions["rollcall.jobs"] = JobClient(celery_client(settings), settings)
    app.extensions["rollcall.facebank"] = Facebank.from_url(
        settings.database_url, cipher_of(settings.secret_key)
    )
    app.extensions["rollcall.live"] = LiveCameras.for_settings(settings)


def current_settings() -> Settings:
    """The settings the app was built with."""
    configured: Settings = current_app.extensions["rollcall.settings"]
    return configured


def facebank() -> Facebank:
    """The facebank: people, faces, rosters, thresholds."""
    bank: Facebank = current_app.extensions["rollcall.facebank"]
    return bank


def cameras() -> CameraDirectory:
    """The cameras a name stands for: the registry's and ``ROLLCALL_UI_CAMERAS``'."""
    configured = {name: camera.url for name, camera in current_settings().ui_cameras.items()}
    return CameraDirectory(facebank().cameras, configured)


def job_client() -> JobClient:
    """Submits jobs to the workers and reads their state (with its Redis and per-key limits)."""
    client: JobClient = current_app.extensions["rollcall.jobs"]
    return client


def live_cameras() -> LiveCameras:
    """Watches on cameras, their shared frames and their readers' status, in Redis."""
    live: LiveCameras = current_app.extensions["rollcall.live"]
    return live


def attendance_sessions() -> AttendanceSessions:
    """The attendance sessions, stored beside the facebank."""
    return AttendanceSessions(facebank().engine)
