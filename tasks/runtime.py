"""A worker process's resources as one object: settings, the models behind their batching front, the
facebank with its snapshots and cameras, the job records, the live cameras' shared frames.

``tasks.worker`` builds it once per process that runs jobs, right after fork (``start``), so the first
job finds the models in memory; jobs reach it through ``current()``. Everything below ``tasks`` (the
recognition core, the facebank) receives what it needs from it and reads no settings of its own. The
models come from the per-process model cache (``ml.pipeline.load_pipeline``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import redis

from contract.records import JobRecords
from facebank.cameras import CameraDirectory
from facebank.db import upgrade
from facebank.passwords import cipher_of
from facebank.store import Facebank
from live import keys
from live.framestore import FrameStore
from ml.mtcnn import MTCNNParams
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from recognition.batching import BatchedPipeline
from recognition.snapshot import FacebankSnapshot, Snapshots
from settings import Settings
from tasks import metrics

log = logging.getLogger("rollcall.jobs")


@dataclass(eq=False)
class Runtime:
    """What this worker process's jobs run with (see the module's doc).

    A worker that consumes no model queue (it only delivers callbacks) has no models. The facebank is
    opened on first use: a job that needs none (detect) runs while the database is away.
    """

    settings: Settings
    loaded: BatchedPipeline | None  # the models, or None where none were loaded
    records: JobRecords | None  # None when the result backend is not Redis
    _opened: Facebank | None = field(default=None, init=False)
    _snapshots: Snapshots | None = field(default=None, init=False)
    _frames: FrameStore | None = field(default=None, init=False)
    _live: redis.Redis | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @classmethod
    def build(cls, settings: Settings, load_models: bool) -> Runtime:
        """The runtime of ``settings``; ``load_models`` loads the pipeline now (a model worker's)."""
        models = None
        if load_models:
            pipe = load_pipeline(pipeline_config(settings))
            wait_s = settings.worker_batch_wait_ms / 1000
            models = BatchedPipeline(pipe, settings.worker_batch_size, wait_s)
        return cls(settings, models, JobRecords.from_settings(settings))

    @property
    def models(self) -> BatchedPipeline:
        """The pipeline behind its batching front (a pass-through when batching is off)."""
        if self.loaded is None:
            raise RuntimeError("this worker consumes no model queue, so it loaded no model")
        return self.loaded

    @property
    def pipe(self) -> FacePipeline:
        return self.models.pipe

    @property
    def facebank(self) -> Facebank:
        """The facebank, brought to the newest schema and opened on first use (idempotent upgrade)."""
        with self._lock:
            if self._opened is None:
                upgrade(self.settings.database_url)  # concurrent upgrades are serialised by the facebank
                cipher = cipher_of(self.settings.secret_key)
                self._opened = Facebank.from_url(self.settings.database_url, cipher)
            return self._opened

    @property
    def cameras(self) -> CameraDirectory:
        """The cameras a job may name: the registry's (passwords decrypted here) and ROLLCALL_UI_CAMERAS'."""
        configured = {name: camera.url for name, camera in self.settings.ui_cameras.items()}
        return CameraDirectory(self.facebank.cameras, configured)

    @property
    def live_redis(self) -> redis.Redis:
        """The Redis live cameras are kept in (``live.keys``): their demand, shared frames, track evidence."""
        with self._lock:
            if self._live is None:
                self._live = keys.connect(self.settings)
            return self._live

    @property
    def live_frames(self) -> FrameStore:
        """The live cameras' shared frames (``live.framestore``) in the result backend's Redis."""
        client = self.live_redis
        with self._lock:
            if self._frames is None:
                settings = self.settings
                self._frames = FrameStore(client, settings.live_frame_ttl_s, settings.live_frame_max_bytes)
            return self._frames

    def shared_frame(self, camera: str) -> bytes | None:
        """The live camera's fresh shared frame (``ROLLCALL_LIVE_FRAME_FRESH_S``), or None: fetch it then.

        A Redis that does not answer is no reason to fail the job: it fetches from the camera instead.
        """
        try:
            shared = self.live_frames.latest(camera, self.settings.live_frame_fresh_s)
        except redis.RedisError as exc:
            log.warning(
                "shared frame of camera %s not read (Redis: %s); fetching from the camera", camera, exc
            )
            return None
        return shared.data if shared is not None else None

    def snapshot(self, people: list[int] | None = None) -> FacebankSnapshot:
        """This job's facebank snapshot (naming ``people`` too); the gallery's size is exported."""
        facebank, pipe = self.facebank, self.pipe
        with self._lock:
            if self._snapshots is None:
                self._snapshots = Snapshots(
                    facebank,
                    pipe.embedder.name,
                    pipe.embedder.version,
                    pipe.device,
                    configured_threshold=self.settings.match_threshold,
                    default_threshold=pipe.embedder.default_threshold,
                )
            snapshots = self._snapshots
        snapshot = snapshots.take(people or ())
        metrics.record_gallery(pipe.embedder.name, snapshot.gallery.face_count)
        return snapshot


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        model_dir=settings.model_dir,
        embedder=settings.embedder,
        device=settings.device,
        mtcnn=MTCNNParams(min_face_size=settings.min_face_size),
        engine=settings.engine,
        embedder_precision=settings.embedder_precision,
        min_face_prob=settings.min_face_prob,
        max_detect_side=settings.max_detect_side,
    )


# This process's runtime: the one per-process object besides the model cache it draws on.
_runtime: Runtime | None = None


def start(settings: Settings, load_models: bool) -> Runtime:
    """Build this process's runtime (``tasks.worker``, once per process that runs jobs)."""
    global _runtime
    _runtime = Runtime.build(settings, load_models)
    return _runtime


def started() -> bool:
    """Whether this process has its runtime already (a stream reader builds it before the worker is ready)."""
    return _runtime is not None


def current() -> Runtime:
    """This process's runtime; only a worker process that ``tasks.worker`` started has one."""
    if _runtime is None:
        raise RuntimeError("no worker runtime in this process: start it with `celery -A tasks worker`")
    return _runtime
