"""Part 5: the same pipeline on the GPU, how embedding throughput grows with faces per forward, and
frames per second when a worker batches N jobs' 640x480 frames (N = 1, 8, 32: ``recognition.batching`` makes
these calls, one detection over all N frames, then one embedding forward over all their faces).

Skipped, with a note, when ``torch.cuda.is_available()`` is false. ``--gpu-device cpu`` runs the same
code on the CPU to check it where no GPU exists (its figures are labelled with the device used).
Every call returns host arrays, so each timing includes the device's synchronisation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import pipeline
from benchmarks.frames import Frame
from benchmarks.galleries import synthetic_gallery
from benchmarks.stats import summarize
from facebank.records import GalleryRows
from ml.align import align_faces
from ml.dlib_resnet import DlibResNetEmbedder
from ml.embedder import Embedder
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline

log = logging.getLogger("benchmarks.gpu")
FRAME_BATCHES = (1, 8, 32)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} (code-path check, not a GPU)"


def face_chips(pipe: FacePipeline, frames: Sequence[Frame], count: int) -> np.ndarray:
    """``count`` aligned chips of the faces found in ``frames``, repeated as needed."""
    chips = [
        align_faces(
            f.image, pipe.detect([f.image])[0].landmarks, pipe.embedder.chip_size, pipe.embedder.template
        )
        for f in frames
    ]
    found = np.concatenate(chips) if chips else np.empty((0,))
    if len(found) == 0:
        raise ValueError("no face found in the benchmark frames: cannot sweep embedding batch sizes")
    return np.ascontiguousarray(np.resize(found, (count, *found.shape[1:])))


def one_forward_embedder(embedder: Embedder, batch: int) -> Embedder:
    """An embedder that runs ``batch`` chips in one forward (dlib's chunks by its own batch size)."""
    if isinstance(embedder, DlibResNetEmbedder):
        return DlibResNetEmbedder(embedder.network, embedder.device, batch_size=batch)
    return embedder


def batch_sweep(
    pipe: FacePipeline, chips: np.ndarray, batches: Sequence[int], repeats: int
) -> dict[str, Any]:
    embedder = one_forward_embedder(pipe.embedder, max(batches))
    sweep: dict[str, Any] = {}
    for batch in batches:
        part = chips[:batch]
        for _ in range(2):
            embedder.embed(part)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            embedder.embed(part)
            times.append((time.perf_counter() - started) * 1000.0)
        summary = summarize(times)
        sweep[str(batch)] = {
            "forward_ms": summary.to_json(),
            "faces_per_s": round(batch / (summary.median / 1000.0), 1),
        }
        log.info("gpu: %d faces per forward: %.2f ms", batch, summary.median)
    return sweep


def frame_batch_sweep(
    pipe: FacePipeline, frames: Sequence[Frame], batches: Sequence[int], repeats: int
) -> dict[str, Any]:
    """Frames per second through detect + align + embed when N jobs' frames go through as one batch."""
    sweep: dict[str, Any] = {}
    for batch in batches:
        images = [frames[i % len(frames)].image for i in range(batch)]

        def once(images: list[np.ndarray] = images) -> None:
            found = pipe.detect(images)
            chips = [pipe.align(image, f.landmarks) for image, f in zip(images, found, strict=True)]
            pipe.embed_chips(np.concatenate(chips))

        for _ in range(2):
            once()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            once()
            times.append((time.perf_counter() - started) * 1000.0)
        summary = summarize(times)
        sweep[str(batch)] = {
            "batch_ms": summary.to_json(),
            "frames_per_s": round(batch / (summary.median / 1000.0), 1),
        }
        log.info("gpu: %d frames per batch: %.1f frames/s", batch, sweep[str(batch)]["frames_per_s"])
    return sweep


def run(
    model_dir: Path,
    device: str,
    frames_by_size: Mapping[str, Sequence[Frame]],
    rows: Mapping[int, GalleryRows],
    repeats: int,
    warmup: int,
    batches: Sequence[int],
) -> dict[str, Any]:
    if device == "cuda" and not torch.cuda.is_available():
        return {"skipped": "no CUDA device here (torch.cuda.is_available() is False)"}
    pipe = load_pipeline(PipelineConfig(model_dir=model_dir, device=device))
    galleries = {n: synthetic_gallery(r, pipe.embedder.name, pipe.device) for n, r in rows.items()}
    threshold = pipe.embedder.default_threshold
    first_frames = next(iter(frames_by_size.values()))
    return {
        "device": str(pipe.device),
        "device_name": device_name(pipe.device),
        "torch_cuda": torch.version.cuda,
        "pipeline": pipeline.run(pipe, frames_by_size, galleries, threshold, repeats, warmup),
        "embed_batch_sweep": batch_sweep(
            pipe, face_chips(pipe, first_frames, max(batches)), batches, repeats
        ),
        "frame_batch_sweep_640x480": frame_batch_sweep(
            pipe, frames_by_size.get("640x480", first_frames), FRAME_BATCHES, repeats
        ),
    }
