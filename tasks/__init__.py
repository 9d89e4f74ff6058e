"""rollcall's workers: thin Celery glue between the job queue and ``ml`` / ``facebank``.

``celery -A tasks worker`` finds ``app`` here; it is built in ``tasks.application``. The API imports
nothing from this package (it sends tasks by name, ``contract`` and ``sources`` hold what it shares).
"""

from tasks.application import app

__all__ = ["app"]
