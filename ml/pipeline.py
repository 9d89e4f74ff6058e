"""The face pipeline a worker runs: MTCNN detection, alignment, batched embedding.

``load_pipeline`` is rollcall's per-process model cache: the first call in a process
loads and verifies the weights, later calls with the same configuration return the
same objects. Workers call it once after fork (``tasks.worker``), never per job.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from errors import InvalidInput
from ml.align import align_faces, flip_chips
from ml.bounded import at_least, detect_bounded
from ml.embedder import Embedder
from ml.engines import EngineLoader, resolve_engine
from ml.mtcnn import MTCNN, Detections, MTCNNParams
from ml.tiling import SmallFaceDetections, TilingParams, detect_small_faces
from ml.timing import StageTimer
from ml.weights import ModelStore


def resolve_device(name: str) -> torch.device:
    """``auto`` means the GPU when one is visible, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class PipelineConfig:
    """What identifies one loaded pipeline (hashable: it keys the cache)."""

    model_dir: Path
    embedder: str = "dlib_resnet_v1"
    device: str = "auto"
    mtcnn: MTCNNParams = field(default_factory=MTCNNParams)
    engine: str = "torch"  # auto | torch | openvino | onnxruntime (ml.engines)
    embedder_precision: str = "float32"  # auto | float32 | int8 (ml.quantize)
    # Answers leave out faces below this probability (MTCNN's last stage passes 0.7 and up).
    min_face_prob: float = 0.0
    # A frame with a longer side is detected on a copy downscaled to it (None: never).
    max_detect_side: int | None = None


def _embedder_classes() -> dict[str, type[Embedder]]:
    from ml.dlib_resnet import DlibResNetEmbedder
    from ml.facenet import FaceNetEmbedder

    return {"dlib_resnet_v1": DlibResNetEmbedder, "facenet_vggface2": FaceNetEmbedder}


def embedder_names() -> list[str]:
    return sorted(_embedder_classes())


class FacePipeline:
    """Detector and embedder loaded on one device by ``config``, with the calls a job needs."""

    def __init__(
        self,
        detector: MTCNN,
        embedder: Embedder,
        config: PipelineConfig,
        device: torch.device,
        load_seconds: float,
        engine: str = "torch",
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.config = config
        self.device = device
        self.load_seconds = load_seconds
        self.engine = engine  # the engine and its version (``EngineLoader.describe``)

    @property
    def params(self) -> MTCNNParams:
        return self.config.mtcnn

    @property
    def min_face_prob(self) -> float:
        return self.config.min_face_prob

    @property
    def max_detect_side(self) -> int | None:
        return self.config.max_detect_side

    def detect(self, frames_bgr: Sequence[np.ndarray], timer: StageTimer | None = None) -> list[Detections]:
        """Faces at least ``min_face_prob`` sure in each frame, each frame's long side bounded by
        ``max_detect_side`` (``ml.bounded``); ``timer`` receives the cascade's stages."""
        found = detect_bounded(self.detector, frames_bgr, self.params, self.max_detect_side, timer)
        return [at_least(d, self.min_face_prob) for d in found]

    def detect_small_faces(self, frame_bgr: np.ndarray, tiling: TilingParams) -> SmallFaceDetections:
        """Detection with the small-face mode (whole frame plus enlarged tiles; see ``ml.tiling``)."""
        return detect_small_faces(
            self.detector, frame_bgr, self.params, tiling, self.max_detect_side, self.min_face_prob
        )

    def align(self, frame_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The embedder's RGB chips [N, S, S, 3] of the faces whose 5 landmarks are given."""
        landmarks = np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2)
        return align_faces(frame_bgr, landmarks, self.embedder.chip_size, self.embedder.template)

    def embed_chips(self, chips_rgb: np.ndarray, flip: bool = False) -> np.ndarray:
        """L2-normalised embeddings [N, D] of aligned chips, one forward pass.

        With ``flip`` each embedding is the re-normalised mean of the chip's and its mirror image's
        (test-time augmentation): chips and mirrors go through the network as one batch of 2N.
        """
        if not flip:
            return self.embedder.embed(chips_rgb)
        count = len(chips_rgb)
        both = self.embedder.embed(np.concatenate([chips_rgb, flip_chips(chips_rgb)]))
        averaged = both[:count] + both[count:]
        norms = np.linalg.norm(averaged, axis=1, keepdims=True)
        return (averaged / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, frame_bgr: np.ndarray, landmarks: np.ndarray, flip: bool = False) -> np.ndarray:
        """L2-normalised embeddings [N, D] of the faces whose 5 landmarks are given (see ``embed_chips``)."""
        return self.embed_chips(self.align(frame_bgr, landmarks), flip)

    def describe(self) -> dict[str, object]:
        """Model names and versions, as reported in every job result."""
        return {
            "detector": "mtcnn/facenet-pytorch-2.6.0",
            "embedder": self.embedder.name,
            "embedder_version": self.embedder.version,
            "embedder_precision": self.embedder.precision,
            "device": str(self.device),
            "engine": self.engine,
        }


@functools.cache
def load_pipeline(config: PipelineConfig) -> FacePipeline:
    """Load (once per process and configuration) the detector and the configured embedder, each built
    with the sessions of the configured engine (``ml.engines``)."""
    classes = _embedder_classes()
    if config.embedder not in classes:
        raise InvalidInput(f"unknown embedder {config.embedder!r}; choose one of {sorted(classes)}")
    started = time.perf_counter()
    device = resolve_device(config.device)
    store = ModelStore(config.model_dir)
    loader = EngineLoader(resolve_engine(config.engine, device), store, torch.get_num_threads())
    detector = MTCNN.from_store(store, device, loader)
    embedder = classes[config.embedder].from_store(store, device, loader, config.embedder_precision)
    return FacePipeline(detector, embedder, config, device, time.perf_counter() - started, loader.describe())
