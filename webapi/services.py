"""The app's services: created once by ``create_app``, handed out to the blueprints from here.

A view reaches the settings, the facebank, the job client (which holds the Redis connection and the
per-key limits), the live cameras' state and the attendance sessions through these functions, never
through another blueprint.
They live in ``app.extensions`` under ``rollcall.*``, so each app (a test builds several) has its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from flask import Flask, current_app

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


@dataclass(frozen=True)
class LiveCameras:
    """What the API reads and writes of live cameras (``live``): watches, shared frames, readers' status."""

    demand: Demand
    frames: FrameStore
    status: StatusBoard

    @classmethod
    def for_settings(cls, settings: Settings) -> LiveCameras:
        client = keys.connect(settings)
        frames = FrameStore(client, settings.live_frame_ttl_s, settings.live_frame_max_bytes)
        return cls(Demand(client), frames, StatusBoard(client))

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
