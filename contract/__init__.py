"""What the API and the workers agree on, one model per concept: each job's options, arguments and result
(``jobs``) and the value types they are made of (``fields``), people as JSON (``people``), the job
record and a job's state as shown (``records``), who sends work (``callers``), admission of that work
(``admission``), uploads by reference (``uploads``), which queue each task goes to (``routing``) and
what of a job's arguments may be shown outside the worker (``redaction``, Celery's message builder;
the only module here that imports Celery).

Imports no ``ml``, no Flask and builds no Celery app: the API reads it without loading the workers' code.
"""
