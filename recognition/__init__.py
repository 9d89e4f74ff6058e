"""The recognition core, free of Celery and Flask: what a job does with a frame once it has one.

``core`` (detect, identify, attendance over a decoded frame), ``frames`` (a job's frame source into a
decoded frame), ``snapshot`` (the facebank a job matches against, read once per revision) and
``batching`` (several jobs' model calls in one forward). Imports ``ml``, ``facebank``, ``sources``
and ``contract``; ``tasks`` wraps it in Celery, the benchmarks call it in process.
"""
