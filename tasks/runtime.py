"""Per-process resources of a worker: the model pipeline, the facebank and its snapshots, the job records.

These are the only process-wide singletons in rollcall. They are created on first use
(``tasks.worker`` touches them right after fork so the first job does not pay for it), live as
long as the worker process, and reach a job as one ``Resources`` value (``tasks.jobs.ModelTask``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

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
from recognition.snapshot import FacebankSnapshot, Snapshots
from settings import Settings, get_settings
from tasks import metrics

log = logging.getLogger("rollcall.jobs")


@dataclass(frozen=True, eq=False)
class Resources:
    """What a job runs with: the settings, the loaded pipeline, and the facebank.

    The facebank is opened on first use: a job that needs none (detect) runs while the database is away.
    """

    settings: Settings
    pipe: FacePipeline

    @property
    def facebank(self) -> Facebank:
        return facebank()

    @property
    def snapshots(self) -> Snapshots:
        return snapshots()

    @property
    def cameras(self) -> CameraDirectory:
        """The cameras a job may name: the registry's (passwords decrypted here) and ROLLCALL_UI_CAMERAS'."""
        configured = {name: camera.url for name, camera in self.settings.ui_cameras.items()}
        return CameraDirectory(self.facebank.cameras, configured)

    def shared_frame(self, camera: str) -> bytes | None:
        """The live camera's fresh shared frame (``ROLLCALL_LIVE_FRAME_FRESH_S``), or None: fetch it then.

        A Redis that does not answer is no reason to fail the job: it fetches from the camera instead.
        """
        try:
            shared = live_frames().latest(camera, self.settings.live_frame_fresh_s)
        except redis.RedisError as exc:
            log.warning(
                "shared frame of camera %s not read (Redis: %s); fetching from the camera", camera, exc
            )
            return None
        return shared.data if shared is not None else None

    def snapshot(self, people: list[int] | None = None) -> FacebankSnapshot:
        """This job's facebank snapshot (naming ``people`` too); the gallery's size is exported."""
        snapshot = self.snapshots.take(people or ())
        metrics.record_gallery(self.pipe.embedder.name, snapshot.gallery.face_count)
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


def pipeline() -> FacePipeline:
    """The process's detector + embedder (``load_pipeline`` caches it)."""
    return load_pipeline(pipeline_config(get_settings()))


@functools.cache
def facebank() -> Facebank:
    settings = get_settings()
    upgrade(settings.database_url)  # idempotent; concurrent upgrades are serialised by the facebank
    return Facebank.from_url(settings.database_url, cipher_of(settings.secret_key))


@functools.cache
def resources() -> Resources:
    return Resources(get_settings(), pipeline())


@functools.cache
def snapshots() -> Snapshots:
    """The facebank snapshots of the loaded embedder (``recognition.snapshot``)."""
    settings = get_settings()
    pipe = pipeline()
    return Snapshots(
        facebank(),
        pipe.embedder.name,
        pipe.embedder.version,
        pipe.device,
        configured_threshold=settings.match_threshold,
        default_threshold=pipe.embedder.default_threshold,
    )


@functools.cache
def live_frames() -> FrameStore:
    """The live cameras' shared frames (``live.framestore``) in the result backend's Redis."""
    settings = get_settings()
    return FrameStore(keys.connect(settings), settings.live_frame_ttl_s, settings.live_frame_max_bytes)


@functools.cache
def job_records() -> JobRecords | None:
    """The job records (``contract.records``) in the result backend's Redis; None when it is not Redis."""
    settings = get_settings()
    return JobRecords.from_settings(settings)
