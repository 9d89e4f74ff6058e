"""Part 1: the pipeline in process, per frame size: detect only, and attendance against each gallery.

Every photo is run ``warmup`` times unmeasured (oneDNN builds its kernels per input shape on first
use), then ``repeats`` times measured, photos interleaved so slow drift on a shared machine spreads
over all of them. Per-frame figures are over all photos × repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.frames import Frame
from benchmarks.inprocess import FrameTiming, timed_frame
from benchmarks.networks import NetworkClock
from benchmarks.stats import summarize
from ml.pipeline import FacePipeline
from recognition.gallery import Gallery

log = logging.getLogger("benchmarks.pipeline")


def measure_size(
    pipe: FacePipeline,
    frames: Sequence[Frame],
    galleries: Mapping[int, Gallery],
    threshold: float,
    repeats: int,
    warmup: int,
) -> tuple[list[tuple[Frame, FrameTiming]], float]:
    """Timings of every frame, ``repeats`` passes after ``warmup`` unmeasured ones, and the milliseconds
    the detections spent inside MTCNN's three networks, in all."""
    for _ in range(warmup):
        for frame in frames:
            timed_frame(pipe, frame.image, galleries, threshold)
    samples = []
    networks = NetworkClock(pipe)
    detector_ms = 0.0
    for _ in range(repeats):
        for frame in frames:
            with networks.measuring():
                timing, _answers = timed_frame(pipe, frame.image, galleries, threshold)
            detector_ms += networks.detector_ms
            samples.append((frame, timing))
    return samples, detector_ms


def size_report(
    samples: Sequence[tuple[Frame, FrameTiming]], identities: Sequence[int], detector_network_ms: float
) -> dict[str, Any]:
    """Per-frame distributions, embedding throughput, the networks' share of detection and a per-photo
    breakdown for one frame size."""
    timings = [t for _, t in samples]
    with_faces = [t for t in timings if t.faces > 0]
    faces = sum(t.faces for t in timings)
    embed_s = sum(t.embed for t in timings) / 1000.0
    align_embed_s = sum(t.align_embed for t in timings) / 1000.0
    photos: dict[str, dict[str, Any]] = {}
    for frame, timing in samples:
        entry = photos.setdefault(
            frame.photo, {"width": frame.width, "height": frame.height, "faces": timing.faces, "detect": []}
        )
        entry["detect"].append(timing.detect)
    return {
        "frames_per_pass": len({frame.photo for frame, _ in samples}),
        "samples": len(samples),
        "faces_measured": faces,
        "detect_ms": summarize([t.detect for t in timings]).to_json(),
        "detect_stages_ms": {
            stage: summarize([t.cascade.get(stage, 0.0) for t in timings]).to_json()
            for stage in ("pyramid", "pnet", "rnet", "onet")
        },
        # Time inside MTCNN's three networks / whole detection, over all measured frames.
        "detect_network_share": round(detector_network_ms / sum(t.detect for t in timings), 3),
        "align_ms": summarize([t.align for t in timings]).to_json(),
        "embed_ms": summarize([t.embed for t in timings]).to_json(),
        "align_embed_ms": summarize([t.align_embed for t in timings]).to_json(),
        "match_ms": {str(n): summarize([t.match[n] for t in timings]).to_json() for n in identities},
        "match_ms_frames_with_faces": {
            str(n): summarize([t.match[n] for t in with_faces]).to_json() for n in identities
        }
        if with_faces
        else None,
        "attendance_ms": {
            str(n): summarize([t.attendance(n) for t in timings]).to_json() for n in identities
        },
        "embed_faces_per_s": round(faces / embed_s, 2) if faces else None,
        "align_embed_faces_per_s": round(faces / align_embed_s, 2) if faces else None,
        "per_photo": {
            name: {
                "width": entry["width"],
                "height": entry["height"],
                "faces": entry["faces"],
                "detect_median_ms": round(summarize(entry["detect"]).median, 3),
            }
            for name, entry in photos.items()
        },
    }


def run(
    pipe: FacePipeline,
    frames_by_size: Mapping[str, Sequence[Frame]],
    galleries: Mapping[int, Gallery],
    threshold: float,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Part 1's JSON: one report per frame size."""
    sizes: dict[str, Any] = {}
    for size, frames in frames_by_size.items():
        log.info("pipeline: %s, %d photos x %d repeats", size, len(frames), repeats)
        samples, detector_ms = measure_size(pipe, frames, galleries, threshold, repeats, warmup)
        sizes[size] = size_report(samples, sorted(galleries), detector_ms)
        log.info(
            "pipeline: %s detect median %.1f ms, align+embed %.1f ms",
            size,
            sizes[size]["detect_ms"]["median"],
            sizes[size]["align_embed_ms"]["median"],
        )
    return {
        "device": str(pipe.device),
        "engine": pipe.engine,
        "embedder": pipe.embedder.name,
        "embedder_precision": pipe.describe().get("embedder_precision", "float32"),
        "threshold": threshold,
        "repeats": repeats,
        "warmup": warmup,
        "gallery_identities": sorted(galleries),
        "sizes": sizes,
    }
