"""What the API and the workers agree on, apart from the task names: the job record kept beside each
job (``records``), which queue each task goes to (``routing``), what a small-face tiling costs
(``tilecost``) and what of a job's arguments may be shown outside the worker (``redaction``).

Imports no ``ml``, no Flask and builds no Celery app: the API reads it without loading the workers' code.
"""
