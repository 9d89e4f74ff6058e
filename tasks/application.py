"""rollcall's Celery application: built from ``celeryconfig``, and nothing else at import.

Task names are ``rollcall.models.*`` so that ``task_routes`` in ``celeryconfig`` sends them to the
model queue (enrolment, rebuild and calibration to the bulk queue, session frames to the frame queue:
``contract.routing``); the attendance sessions' timers (``rollcall.sessions.*``) go to the model queue.
Callback deliveries (``rollcall.io.callback``) go to the I/O queue, ``rollcall.io``. The task modules
in ``include`` are imported when a worker starts, not here.
"""

import os
from typing import Any

from celery import Celery
from celery.signals import import_modules

app = Celery(
    "rollcall",
    include=[
        "tasks.jobs",
        "tasks.calibration",
        "tasks.callbacks",
        "tasks.sessions",
        "tasks.worker",
        "tasks.live",
    ],
    amqp="contract.redaction:RedactingAMQP",  # no camera password or upload in Flower's task list
)
app.config_from_object("celeryconfig")


@import_modules.connect(sender=app)
def _passive_openmp(**_: Any) -> None:
    # Worker processes share cores with each other: OpenMP threads that spin while waiting for a
    # descheduled partner made torch stages 10-15x slower on a busy 2-core machine (BENCHMARKS.md).
    # It must be in the environment before torch is imported: a worker imports the task modules
    # (and with them torch) right after this signal, before any of its own start-up signals.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


__all__ = ["app"]
