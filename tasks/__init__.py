"""rollcall's Celery application: thin glue between the job queue and ``ml`` / ``facebank``.

``celery -A tasks worker`` finds ``app`` here. Task names are ``rollcall.models.*`` so that
``task_routes`` in ``celeryconfig`` sends them to the model queue.
"""

from celery import Celery

app = Celery("rollcall", include=["tasks.jobs", "tasks.worker"])
app.config_from_object("celeryconfig")

__all__ = ["app"]
