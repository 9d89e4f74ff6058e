"""What the API and the workers agree on: task names and each job's arguments and result (``jobs``),
the job record kept beside each job (``records``), which queue each task goes to (``routing``), what a
small-face tiling costs (``tilecost``) and what of a job's arguments may be shown outside the worker
(``redaction``, Celery's message builder; the only module here that imports Celery).

Imports no ``ml``, no Flask and builds no Celery app: the API reads it without loading the workers' code.
"""
