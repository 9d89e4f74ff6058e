"""Batching across jobs: the frames of up to N model jobs a worker runs at once go through one forward.

A worker batches when ``ROLLCALL_WORKER_BATCH_SIZE`` is N > 1 and it runs N jobs at once, which is
Celery's ``threads`` pool with ``--concurrency N`` (``celeryconfig`` makes that the default then). Its
runtime (``tasks.runtime``) wraps the pipeline once in a ``BatchedPipeline`` of that size; with N = 1
each call goes straight to the pipeline, so the recognition core calls the same front either way.
Every job stays an ordinary Celery task in its own thread, so acks-late, its result or error, its
time in the log and revocation (checked before a job starts, ``tasks.registry.ModelTask``) stay exactly
per job; only the model calls meet here. The first job to reach a stage leads a batch: it waits until
N jobs have joined, or every job running in this process that has not yet passed this stage has, or
``ROLLCALL_WORKER_BATCH_WAIT_MS`` has passed, then runs the batch and hands each job its own answer.
If the batched call fails, each job's input is run alone, so one bad frame fails only its own job.

Chosen over the ``celery-batches`` package, whose current release (0.11) requires celery < 5.7.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from ml.mtcnn import Detections
from ml.pipeline import FacePipeline

log = logging.getLogger("rollcall.batching")
In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(eq=False)
class RunningJob:
    """One job while it runs: how many jobs shared each batched stage with it (``{"detect": 3}``)."""

    batch_sizes: dict[str, int] = field(default_factory=dict)


class _Jobs:
    """The jobs running in this process now, so a batch knows whom it may still wait for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified when a job ends or joins a batch
        self.running: set[RunningJob] = set()
        self._local = threading.local()  # the job each thread runs

    @property
    def current(self) -> RunningJob | None:
        job: RunningJob | None = getattr(self._local, "job", None)
        return job

    @contextmanager
    def running_job(self) -> Iterator[RunningJob]:
        job = RunningJob()
        with self.lock:
            self.running.add(job)
        self._local.job = job
        try:
            yield job
        finally:
            self._local.job = None
            with self.changed:
                self.running.discard(job)
                self.changed.notify_all()


@dataclass
class _Slot(Generic[In, Out]):
    item: In
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Batcher(Generic[In, Out]):
    """Gathers items submitted from several threads and runs them as one call (see the module's doc)."""

    def __init__(
        self,
        name: str,
        run_batch: Callable[[list[In]], Sequence[Out]],
        max_size: int,
        wait_s: float,
        jobs: _Jobs,
    ) -> None:
        self.name = name
        self.run_batch = run_batch
        self.max_size = max_size
        self.wait_s = wait_s
        self._jobs = jobs
        self._cond = jobs.changed
        self._open: list[_Slot[In, Out]] | None = None
        self._passed: set[RunningJob] = set()  # jobs that already went through this stage

    def submit(self, item: In) -> Out:
        """This job's answer for ``item``, computed in a batch with other jobs' items."""
        job = self._jobs.current or RunningJob()  # a call outside any job batches as a job of its own
        slot: _Slot[In, Out] = _Slot(item)
        with self._cond:
            self._passed &= self._jobs.running
            leader = self._open is None
            if leader:
                self._open = []
            batch = self._open
            assert batch is not None
            batch.append(slot)
            self._passed.add(job)
            if leader:
                deadline = time.monotonic() + self.wait_s
                while not self._ready(batch) and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                self._open = None
            else:
                self._cond.notify_all()
        if leader:
            self._run(batch)
        slot.done.wait()
        job.batch_sizes[self.name] = len(batch)
        if slot.error is not None:
            raise slot.error
        result: Out = slot.result
        return result

    def _ready(self, batch: list[_Slot[In, Out]]) -> bool:
        if len(batch) >= self.max_size:
            return True
        # Jobs that could still come: running, not yet through this stage (those in the batch are through).
        return not (self._jobs.running - self._passed)

    def _run(self, batch: list[_Slot[In, Out]]) -> None:
        try:
            try:
                outputs = list(self.run_batch([slot.item for slot in batch]))
                for slot, output in zip(batch, outputs, strict=True):
                    slot.result = output
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                else:
                    log.info(
                        "batched %s of %d jobs failed (%s); running each alone", self.name, len(batch), exc
                    )
                    for slot in batch:
                        try:
                            slot.result = self.run_batch([slot.item])[0]
                        except Exception as alone:  # handed to the job it belongs to, which raises it
                            slot.error = alone
        finally:
            for slot in batch:
                slot.done.set()


@dataclass(frozen=True)
class EmbedRequest:
    """One job's faces to embed: its frame, their 5 landmarks [N,5,2] and whether to add mirror images."""

    frame_bgr: np.ndarray
    landmarks: np.ndarray
    flip: bool


class BatchedPipeline:
    """The calls of ``FacePipeline`` that jobs make, batched across the jobs running in this process.

    ``max_size`` 1 turns batching off: every call then goes straight to the pipeline.
    """

    def __init__(self, pipe: FacePipeline, max_size: int = 1, wait_s: float = 0.0) -> None:
        self.pipe = pipe
        self.max_size = max_size
        self._jobs = _Jobs()
        # One batch at a time on the models: two at once would only split the same cores (or GPU).
        self._models = threading.Lock()
        self.detector = Batcher("detect", self._detect_all, max_size, wait_s, self._jobs)
        self.embedder = Batcher("embed", self._embed_all, max_size, wait_s, self._jobs)

    def running_job(self) -> AbstractContextManager[RunningJob]:
        """Context of one job: while it runs, batches count it among those that may still join them."""
        return self._jobs.running_job()

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """One frame's faces, detected with other jobs' frames when batching is on."""
        if self.max_size <= 1:
            return self.pipe.detect([frame_bgr])[0]
        return self.detector.submit(frame_bgr)

    def embed(self, frame_bgr: np.ndarray, landmarks: np.ndarray, flip: bool) -> np.ndarray:
        """Embeddings of one frame's faces, in one forward with other jobs' faces when batching is on."""
        if self.max_size <= 1:
            return self.pipe.embed(frame_bgr, landmarks, flip=flip)
        return self.embedder.submit(EmbedRequest(frame_bgr, landmarks, flip))

    def _detect_all(self, frames_bgr: list[np.ndarray]) -> list[Detections]:
        with self._models:
            return self.pipe.detect(frames_bgr)

    def _embed_all(self, requests: list[EmbedRequest]) -> list[np.ndarray]:
        """Every job's chips aligned, then one forward per ``flip`` value; split back per job."""
        chips = [self.pipe.align(r.frame_bgr, r.landmarks) for r in requests]
        with self._models:
            return self._embed_chips(requests, chips)

    def _embed_chips(self, requests: list[EmbedRequest], chips: list[np.ndarray]) -> list[np.ndarray]:
        answers: list[np.ndarray | None] = [None] * len(requests)
        for flip in (False, True):
            chosen = [i for i, r in enumerate(requests) if r.flip is flip]
            if not chosen:
                continue
            counts = [len(chips[i]) for i in chosen]
            if sum(counts) == 0:
                vectors = np.zeros((0, self.pipe.embedder.dim), dtype=np.float32)
            else:
                vectors = self.pipe.embed_chips(np.concatenate([chips[i] for i in chosen]), flip=flip)
            for i, part in zip(chosen, np.split(vectors, np.cumsum(counts)[:-1]), strict=True):
                answers[i] = part
        return [a if a is not None else np.zeros((0, self.pipe.embedder.dim), np.float32) for a in answers]
