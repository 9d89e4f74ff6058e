"""Presence changes out to a webhook: a ``LiveSink`` that hands each one to the job callbacks' delivery.

With ``ROLLCALL_LIVE_WEBHOOK_URL`` set, each ``arrived``/``left`` is POSTed there as the JSON
``{"camera", "person_id", "name", "event", "ts"}`` by ``rollcall.io.callback`` (``tasks.callbacks``): the
same HMAC signature (``ROLLCALL_CALLBACK_SECRET``), retries with backoff and address checks as a job's
callback, on the I/O queue, so a slow receiver never holds the reader. The URL must pass the allowlist
cameras share and never reach the deployment's own services: checked when the reader starts
(``check_webhook_url``, so a misconfigured reader stops at once) and again at every delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import errors
from live.processing import EndedTrack, ProcessedFrame
from settings import Settings
from sources.urls import without_credentials

log = logging.getLogger("rollcall.live")

# tasks.callbacks.schedule_callback bound to the reader's Celery app: (url, payload) → queued.
Schedule = Callable[[str, dict[str, Any]], None]


def check_webhook_url(url: str, settings: Settings) -> None:
    """Refuse a webhook that could not be signed, or whose address the camera allowlist refuses (an own
    service included): ``CallbacksNotConfigured`` or ``CallbackNotAllowed``."""
    if not settings.callback_secret.get_secret_value():
        raise errors.CallbacksNotConfigured(
            "ROLLCALL_LIVE_WEBHOOK_URL needs ROLLCALL_CALLBACK_SECRET to sign deliveries; it is not set"
        )
    shown = without_credentials(url, keep_query=False)
    try:
        settings.camera_allow.check_url(url)
    except errors.CameraNotAllowed as exc:
        raise errors.CallbackNotAllowed(f"ROLLCALL_LIVE_WEBHOOK_URL {shown} refused: {exc.message}") from exc
    except errors.CameraUnreachable as exc:  # DNS: a receiver not up yet; each delivery checks again
        log.warning("ROLLCALL_LIVE_WEBHOOK_URL %s cannot be checked now: %s", shown, exc.message)


class WebhookSink:
    """Queues a signed delivery of every presence change to one URL (a ``LiveSink``)."""

    def __init__(self, url: str, schedule: Schedule) -> None:
        self._url = url
        self._schedule = schedule

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        for change in processed.presence:
            self._schedule(self._url, asdict(change))

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        """Nothing to send: a closed camera decides no presence change."""
