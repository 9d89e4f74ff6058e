"""Which queue each task goes to: interactive model jobs, bulk model work, network work.

Interactive jobs (detect, identify, attendance: what a person or a seed route waits for) go to
``ROLLCALL_MODEL_QUEUE``; bulk work (enrolment, rebuild, calibration, attendance-session ticks and
frames) to ``ROLLCALL_BULK_QUEUE``; callback deliveries to ``ROLLCALL_IO_QUEUE``. A worker that consumes
several queues takes from them in turn, so a backlog of bulk work delays an interactive job by at
most one bulk job per worker process; a worker that consumes only the model queue never runs bulk work.
Used by ``celeryconfig`` (workers) and ``webapi.celery_client`` (the API's client).
"""

from __future__ import annotations

from typing import Any

from contract.jobs import CALIBRATE, ENROL_FACE, REBUILD_FACEBANK, SESSION_FRAME
from settings import Settings

BULK_TASKS = (ENROL_FACE, REBUILD_FACEBANK, CALIBRATE, SESSION_FRAME)


def task_routes(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's ``task_routes``: exact names (bulk) are matched before the patterns.

    ``confirm_timeout``: under RabbitMQ (publisher confirms, see ``celeryconfig``) a submission waits
    that long for the broker's confirm and then fails (the API answers 503), instead of hanging on a
    broker that accepts TCP but does not answer. Redis ignores it.
    """
    publish = {"confirm_timeout": settings.broker_timeout_s}
    return {
        **{name: {"queue": settings.bulk_queue, **publish} for name in BULK_TASKS},
        "rollcall.sessions.*": {"queue": settings.bulk_queue, **publish},
        "rollcall.models.*": {"queue": settings.model_queue, **publish},
        "rollcall.io.*": {"queue": settings.io_queue, **publish},
    }
