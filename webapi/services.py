"""The app's services: created once by ``create_app``, handed out to the blueprints from here.

A view reaches the settings, the facebank, the job client (which holds the Redis connection and the
per-key limits) and the attendance sessions through these functions, never through another blueprint.
They live in ``app.extensions`` under ``rollcall.*``, so each app (a test builds several) has its own.
"""

from __future__ import annotations

from flask import Flask, current_app

from facebank.cameras import CameraDirectory
from facebank.passwords import cipher_of
from facebank.sessions import AttendanceSessions
from facebank.store import Facebank
from settings import Settings
from webapi.jobclient import JobClient
from webapi.jobqueue import celery_client


def install_services(app: Flask, settings: Settings) -> None:
    """Create the app's services for ``settings`` (the facebank's schema must be current)."""
    app.extensions["rollcall.settings"] = settings
    app.extensions["rollcall.jobs"] = JobClient(celery_client(settings), settings)
    app.extensions["rollcall.facebank"] = Facebank.from_url(
        settings.database_url, cipher_of(settings.secret_key)
    )


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


def attendance_sessions() -> AttendanceSessions:
    """The attendance sessions, stored beside the facebank."""
    return AttendanceSessions(facebank().engine)
