"""A worker's Prometheus metrics: time per job stage, jobs by outcome, gallery size, model load time.

The worker's main process serves them at ``http://<addr>:ROLLCALL_WORKER_METRICS_PORT/metrics``
(``serve``, called at worker start-up). Prefork children, which run the jobs, keep their samples
in prometheus_client's multiprocess files in a directory the main process creates before forking
them, and the main process adds them up on each scrape; solo and threads workers run jobs in the
main process and serve its ordinary registry (which also carries ``process_*`` memory and CPU).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From a GPU's few milliseconds per stage to a CPU worker's seconds on a large frame and the camera
# fetch budget (connect + read timeouts, 13 s by default).
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


@dataclass(frozen=True)
class WorkerMetrics:
    """The metric families a worker process records into."""

    stage_seconds: Histogram
    job_seconds: Histogram
    jobs: Counter
    gallery_faces: Gauge
    model_load_seconds: Gauge


@functools.cache
def worker_metrics() -> WorkerMetrics:
    """This process's metrics, created on first use (after ``serve`` chose the storage)."""
    return WorkerMetrics(
        stage_seconds=Histogram(
            "rollcall_stage_seconds",
            "Seconds one stage of a job took (fetch, decode, detect, embed, match, store).",
            ["stage", "job"],
            buckets=SECONDS_BUCKETS,
        ),
        job_seconds=Histogram(
            "rollcall_job_seconds",
            "Seconds a job took in the worker, all stages together.",
            ["job"],
            buckets=SECONDS_BUCKETS,
        ),
        jobs=Counter(
            "rollcall_jobs",
            "Jobs finished, by type and outcome: succeeded, revoked, or the error code it failed with.",
            ["job", "outcome"],
        ),
        gallery_faces=Gauge(
            "rollcall_gallery_faces",
            "Enrolled faces in the gallery the worker matches against, per embedding model.",
            ["model"],
            multiprocess_mode="mostrecent",
        ),
        model_load_seconds=Gauge(
            "rollcall_model_load_seconds",
            "Seconds a worker process took to load its detector and embedder (the slowest process).",
            ["embedder", "device"],
            multiprocess_mode="max",
        ),
    )


def record_job(job: str, outcome: str, timings_ms: Mapping[str, float]) -> None:
    """Count one finished job and observe its stage times (a ``StageTimer.report()``, ``total`` included)."""
    metrics = worker_metrics()
    metrics.jobs.labels(job=job, outcome=outcome).inc()
    for stage, ms in timings_ms.items():
        if stage == "total":
            metrics.job_seconds.labels(job=job).observe(ms / 1000.0)
        else:
            metrics.stage_seconds.labels(stage=stage, job=job).observe(ms / 1000.0)


def record_gallery(model: str, faces: int) -> None:
    worker_metrics().gallery_faces.labels(model=model).set(faces)


def record_model_load(embedder: str, device: str, seconds: float) -> None:
    worker_metrics().model_load_seconds.labels(embedder=embedder, device=device).set(seconds)


def serve(port: int, address: str, multiprocess_dir: Path | None) -> None:
    """Serve ``/metrics`` from this (main) process on a background thread.

    With ``multiprocess_dir`` (prefork), the children forked later inherit it through the
    environment and write their samples there; each scrape adds them up. Call this before any
    metric is recorded in this process. ``OSError`` when the port cannot be bound.
    """
    registry = REGISTRY
    if multiprocess_dir is not None:
        multiprocess_dir.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(multiprocess_dir)
        # prometheus_client reads PROMETHEUS_MULTIPROC_DIR once, when first imported, and the celery
        # command imports it (through Flower's CLI plugin) before any worker code runs: choose the
        # storage again, as prometheus_client's own tests do. Metric values created from now on,
        # in this process and in the children forked from it, are multiprocess files.
        values.ValueClass = values.get_value_class()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(multiprocess_dir))
    start_http_server(port, addr=address, registry=registry)
