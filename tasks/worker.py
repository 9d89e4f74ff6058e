"""Worker start-up: read the settings, size torch's thread pool and build each job process's runtime.

Every process that runs jobs gets its ``tasks.runtime.Runtime``, with the models loaded when the
worker consumes a model queue. Prefork children build it in ``worker_process_init`` (after the fork:
CUDA must never be touched in the parent). ``solo`` and ``threads`` pools, the choice on a GPU, have
no children: Celery's solo pool sends ``worker_process_init`` in the main process when the pool is
made, the threads pool does not, so ``worker_ready`` builds it when nothing did, before the first
message is handed out. Either way the first job finds the models in memory.

The main process also makes the worker's state directory (readiness files, ``tasks.health``)
and, when ``ROLLCALL_WORKER_METRICS_PORT`` is set, serves ``/metrics`` (``tasks.metrics``).
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from celery.signals import (
    after_setup_logger,
    celeryd_after_setup,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from settings import Settings, get_settings
from tasks import app, health, metrics, runtime

log = logging.getLogger("rollcall.worker")
_CONCURRENCY_ENV = "ROLLCALL_WORKER_CONCURRENCY"


@after_setup_logger.connect
def _quiet_celery_task_lines(**_: Any) -> None:
    # Each job logs one line of its own (tasks.joblog); Celery's per-task lines would repeat it and
    # print every result, people's names included. A bug's traceback (ERROR) still comes through.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)


@celeryd_after_setup.connect
def _remember_concurrency(sender: str, instance: Any, **_: Any) -> None:
    # Children inherit the environment: it tells them how many siblings share the cores. Threads of
    # one process share its torch thread pool, so only prefork children count as siblings.
    concurrency = getattr(instance, "concurrency", 1) or 1
    os.environ[_CONCURRENCY_ENV] = str(concurrency if _uses_prefork(instance.pool_cls) else 1)
    batch = get_settings().worker_batch_size
    if batch > 1 and ("threads" not in str(instance.pool_cls) or concurrency < batch):
        log.warning(
            "ROLLCALL_WORKER_BATCH_SIZE=%d batches only the jobs one process runs at once: start this "
            "worker with --pool threads --concurrency %d (it has %s, concurrency %d)",
            batch,
            batch,
            instance.pool_cls,
            concurrency,
        )


def _uses_prefork(pool: Any) -> bool:
    """Whether a pool (or pool class) forks children that run the jobs."""
    cls = pool if isinstance(pool, type) else type(pool)
    return "prefork" in cls.__module__


@celeryd_after_setup.connect
def _prepare_state_and_metrics(sender: str, instance: Any, **_: Any) -> None:
    # Runs in the main process before the pool starts, so prefork children inherit both.
    state = health.create_state_dir()
    settings = get_settings()
    if not settings.worker_metrics_port:
        return
    multiprocess_dir = state / "metrics" if _uses_prefork(instance.pool_cls) else None
    try:
        metrics.serve(settings.worker_metrics_port, settings.worker_metrics_addr, multiprocess_dir)
    except OSError as exc:
        # A worker without /metrics still runs jobs; the scrape target shows down and the log says why.
        log.error(
            "cannot serve metrics on %s:%d (%s); this worker runs without /metrics",
            settings.worker_metrics_addr,
            settings.worker_metrics_port,
            exc,
        )
        return
    log.info("metrics at http://%s:%d/metrics", settings.worker_metrics_addr, settings.worker_metrics_port)


@worker_shutdown.connect
def _remove_state(**_: Any) -> None:
    state = health.state_dir()
    if state is not None:
        shutil.rmtree(state)


def _set_torch_threads(settings: Settings) -> None:
    import torch

    threads = settings.torch_threads
    if threads == 0:
        siblings = int(os.environ.get(_CONCURRENCY_ENV, "1"))
        threads = max(1, (os.cpu_count() or 1) // max(1, siblings))
    torch.set_num_threads(threads)


def start_runtime() -> runtime.Runtime:
    """Build this process's runtime; a model worker's loads the pipeline and fills the gallery first,
    so the first job is fast."""
    settings = get_settings()
    if not _serves_models(settings):
        log.info("this worker consumes no model queue: no model loaded")
        return runtime.start(settings, load_models=False)
    _set_torch_threads(settings)
    started = runtime.start(settings, load_models=True)
    pipe = started.pipe
    started.snapshot()
    described = pipe.describe()
    metrics.record_model_load(pipe.embedder.name, str(described["device"]), pipe.load_seconds)
    _mark_ready(started)
    log.info("models loaded in %.2f s: %s", pipe.load_seconds, described)
    return started


def _mark_ready(started: runtime.Runtime) -> None:
    """Leave this process's readiness file, once the worker's state directory exists (a no-op before)."""
    if started.loaded is not None:
        health.mark_loaded(started.pipe.describe(), started.pipe.load_seconds)


def _serves_models(settings: Settings) -> bool:
    """Whether this worker consumes a model queue; one that only delivers callbacks loads no model."""
    consumed = set(app.amqp.queues.consume_from or app.amqp.queues)
    if settings.live_processor and settings.live_queue in consumed:
        return True  # a stream reader whose frame processor detects and embeds
    return bool(consumed & {settings.model_queue, settings.bulk_queue, settings.frame_queue})


@celeryd_after_setup.connect
def _warn_about_a_queue_left_out(sender: str, instance: Any, **_: Any) -> None:
    # Session frames have their own queue since issue 26: a model worker started with the older
    # `-Q rollcall.models,rollcall.bulk` runs the sessions' ticks but none of their frames.
    settings = get_settings()
    consumed = set(app.amqp.queues.consume_from or app.amqp.queues)
    if settings.bulk_queue in consumed and settings.frame_queue not in consumed:
        log.warning(
            "this worker consumes %s but not %s: attendance sessions' frames need a worker that does "
            "(-Q %s,%s,%s)",
            settings.bulk_queue,
            settings.frame_queue,
            settings.model_queue,
            settings.bulk_queue,
            settings.frame_queue,
        )


@worker_process_init.connect
def _start_child(**_: Any) -> None:
    start_runtime()


@worker_ready.connect
def _start_main_process(sender: Any, **_: Any) -> None:
    if _uses_prefork(getattr(sender, "pool", None)):
        return
    if not runtime.started():
        start_runtime()
        return
    # Celery's solo pool sends worker_process_init when the pool is made, before celeryd_after_setup
    # creates the state directory, so the models loaded then are marked ready only now.
    _mark_ready(runtime.current())
