"""Worker start-up: size torch's thread pool and load the models once per worker process.

Prefork children load in ``worker_process_init`` (after the fork: CUDA must never be touched
in the parent). ``solo`` and ``threads`` pools, the choice on a GPU, have no children and load
in ``worker_ready`` instead. Either way the first job finds the models in memory.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import celeryd_after_setup, worker_process_init, worker_ready

from settings import get_settings

log = logging.getLogger("rollcall.worker")
_CONCURRENCY_ENV = "ROLLCALL_WORKER_CONCURRENCY"


@celeryd_after_setup.connect
def _remember_concurrency(sender: str, instance: Any, **_: Any) -> None:
    # Children inherit the environment: it tells them how many siblings share the cores.
    os.environ[_CONCURRENCY_ENV] = str(getattr(instance, "concurrency", 1) or 1)


def _set_torch_threads() -> None:
    import torch

    threads = get_settings().torch_threads
    if threads == 0:
        siblings = int(os.environ.get(_CONCURRENCY_ENV, "1"))
        threads = max(1, (os.cpu_count() or 1) // max(1, siblings))
    torch.set_num_threads(threads)


def preload_models() -> None:
    """Load the pipeline, open the facebank and fill the gallery so the first job is fast."""
    from tasks import runtime

    _set_torch_threads()
    pipe = runtime.pipeline()
    runtime.gallery_cache().get(pipe.embedder.name, pipe.embedder.version)
    log.info("models loaded in %.2f s: %s", pipe.load_seconds, pipe.describe())


@worker_process_init.connect
def _load_in_child(**_: Any) -> None:
    preload_models()


@worker_ready.connect
def _load_in_main_process(sender: Any, **_: Any) -> None:
    pool = type(getattr(sender, "pool", None)).__module__ if sender is not None else ""
    if "prefork" not in pool:
        preload_models()
