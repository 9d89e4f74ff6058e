"""rollcall's benchmarks: ``python -m benchmarks`` (see ``--help`` and BENCHMARKS.md).

Parts: the pipeline in process (detect, align+embed, match against synthetic galleries), the
seed's way of serving a request on the same weights, the whole system over HTTP (API, Redis,
Celery workers, a loopback camera), worker memory, and the GPU when there is one.
"""
