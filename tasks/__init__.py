"""rollcall's Celery application: thin glue between the job queue and ``ml`` / ``facebank``.

``celery -A tasks worker`` finds ``app`` here. Task names are ``rollcall.models.*`` so that
``task_routes`` in ``celeryconfig`` sends them to the model queue; the attendance sessions'
scheduling tasks (``rollcall.sessions.*``) go to the default queue, which is the same one.
Callback deliveries (``rollcall.io.callback``) go to the I/O queue, ``rollcall.io``.
"""

import os

from celery import Celery

# Worker processes share cores with each other: OpenMP threads that spin while waiting for a
# descheduled partner made torch stages 10-15x slower on a busy 2-core machine (BENCHMARKS.md).
# It must be in the environment before torch is imported, which happens after this module.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

app = Celery(
    "rollcall",
    include=["tasks.jobs", "tasks.calibration", "tasks.callbacks", "tasks.sessions", "tasks.worker"],
    amqp="tasks.redaction:RedactingAMQP",  # no camera password or upload in Flower's task list
)
app.config_from_object("celeryconfig")

__all__ = ["app"]
