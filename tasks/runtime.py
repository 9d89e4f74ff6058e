"""Per-process resources of a worker: the model pipeline, the facebank and its gallery cache.

These are the only process-wide singletons in rollcall. Each is created on first use
(``tasks.worker`` touches them right after fork so the first job does not pay for it)
and lives as long as the worker process.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from urllib.parse import urlsplit

import errors
from contract.tilecost import fitted_scale, tile_cost
from facebank.calibration import ThresholdCache
from facebank.db import upgrade
from facebank.gallery import Gallery, GalleryCache
from facebank.store import Facebank
from ml.mtcnn import MTCNNParams
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from ml.tiling import TilingParams
from settings import Settings, get_settings
from sources.netguard import CameraAllowlist
from tasks import metrics


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        model_dir=settings.model_dir,
        embedder=settings.embedder,
        device=settings.device,
        mtcnn=MTCNNParams(min_face_size=settings.min_face_size),
        engine=settings.engine,
        min_face_prob=settings.min_face_prob,
        max_detect_side=settings.max_detect_side,
    )


def pipeline() -> FacePipeline:
    """The process's detector + embedder (``load_pipeline`` caches it)."""
    return load_pipeline(pipeline_config(get_settings()))


@functools.cache
def facebank() -> Facebank:
    url = get_settings().database_url
    upgrade(url)  # idempotent; concurrent upgrades are serialised by the facebank
    return Facebank.from_url(url)


@functools.cache
def gallery_cache() -> GalleryCache:
    return GalleryCache(facebank(), device=pipeline().device)


def gallery() -> Gallery:
    """The loaded embedder's current gallery (reloaded when the facebank changed); its size is exported."""
    embedder = pipeline().embedder
    current = gallery_cache().get(embedder.name, embedder.version)
    metrics.record_gallery(embedder.name, current.face_count)
    return current


def camera_allowlist() -> CameraAllowlist:
    """``ROLLCALL_CAMERA_ALLOW``, parsed with the settings."""
    return get_settings().camera_allow


@functools.cache
def threshold_cache() -> ThresholdCache:
    return ThresholdCache(facebank())


def match_threshold() -> float:
    """``ROLLCALL_MATCH_THRESHOLD``, else the one applied in the facebank, else the embedder's default.

    The applied value is cached until the facebank's revision moves: one primary-key read per call.
    """
    configured = get_settings().match_threshold
    if configured is not None:
        return configured
    embedder = pipeline().embedder
    applied = threshold_cache().get(embedder.name, embedder.version)
    return applied if applied is not None else embedder.default_threshold


def tiling_params(
    source: dict[str, Any], options: dict[str, Any] | None, frame_pixels: int
) -> tuple[TilingParams, float | None]:
    """The job's own small-face options, else its camera's mode, else the configured default.

    Bounded by the settings: a tiling over the cost limit is refused (the API refuses it at
    submission already), and a frame too large for its tiles is tiled at a smaller scale, or not
    at all. The second value is the scale actually used when it had to be lowered, else None.
    """
    settings = get_settings()
    options = dict(options or {})
    if "mode" not in options:
        host = (urlsplit(str(source["url"])).hostname or "").lower() if "url" in source else ""
        options["mode"] = settings.small_faces_cameras.get(host, settings.small_faces)
    params = TilingParams(**options)
    if params.mode == "off":
        return params, None
    fields = {"scale": params.scale, "overlap": params.overlap, "min_face_size": params.min_face_size}
    if tile_cost({**fields, "mode": "on"}) > settings.small_faces_max_tile_cost:
        raise errors.InvalidInput(
            f"small_faces costs more than this server's limit of {settings.small_faces_max_tile_cost:g}"
        )
    scale = fitted_scale(fields, frame_pixels, settings.small_faces_max_tile_pixels)
    if scale >= params.scale:
        return params, None
    if scale < 1.0:  # even unenlarged tiles would be too many pixels: the whole frame alone
        return dataclasses.replace(params, mode="off"), scale
    return dataclasses.replace(params, scale=round(scale, 3)), round(scale, 3)
