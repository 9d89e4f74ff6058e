"""Which queue each task goes to: interactive model jobs, bulk model work, session frames, network work.

Interactive jobs (detect, identify, attendance: what a person or a seed route waits for) and the
attendance sessions' timers (``rollcall.sessions.*``: tick, record, expire, close, milliseconds each) go to
``ROLLCALL_MODEL_QUEUE``; bulk work (enrolment, rebuild, calibration) to ``ROLLCALL_BULK_QUEUE``; the
sessions' frames to ``ROLLCALL_FRAME_QUEUE``; callback deliveries to ``ROLLCALL_IO_QUEUE``. A worker that
consumes several queues takes from them in turn (kombu moves the queue it read last to the end), so a
backlog in one queue delays another's work by at most the jobs its processes are running: an enrolment
and a session's tick never wait behind queued frames. In the frame queue each API key's frames are
bounded (``contract.admission``: ``ROLLCALL_SESSION_MAX_QUEUED_FRAMES``), so another key's frame waits
behind at most that many of them.
Used by ``celeryconfig`` (workers) and ``webapi.jobqueue.celery_client`` (the API's client).
"""

from __future__ import annotations

from typing import Any

from contract.jobs import JOBS, QueueKind
from settings import Settings


def queue_of(kind: QueueKind, settings: Settings) -> str:
    """The configured queue of one kind (a job's ``JobArgs.queue``)."""
    return {"model": settings.model_queue, "bulk": settings.bulk_queue, "frame": settings.frame_queue}[kind]


def task_routes(settings: Settings) -> dict[str, dict[str, Any]]:
    """Celery's ``task_routes``: each job by its model's queue, then the other tasks by pattern.

    ``confirm_timeout``: under RabbitMQ (publisher confirms, see ``celeryconfig``) a submission waits
    that long for the broker's confirm and then fails (the API answers 503), instead of hanging on a
    broker that accepts TCP but does not answer. Redis ignores it.
    """
    publish = {"confirm_timeout": settings.broker_timeout_s}
    return {
        **{job.task_name(): {"queue": queue_of(job.queue, settings), **publish} for job in JOBS},
        "rollcall.sessions.*": {"queue": settings.model_queue, **publish},
        "rollcall.io.*": {"queue": settings.io_queue, **publish},
    }
