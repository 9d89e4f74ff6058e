"""The frames every part measures: the shared scene photos, resized to the benchmark's frame sizes.

Benchmarks and tests read the read-only shared data (``ROLLCALL_SHARED_DIR``, default ``../shared``
beside the repository) through ``shared_dir`` here; ``tests/shared_data.py`` re-exports it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENES = "oracles/mtcnn_facenet_pytorch/images"
NATIVE = "native"


def shared_dir() -> Path:
    path = Path(os.environ.get("ROLLCALL_SHARED_DIR", REPO_ROOT.parent / "shared"))
    if not (path / "datasets").is_dir():
        raise FileNotFoundError(
            f"shared data not found at {path}: set ROLLCALL_SHARED_DIR to the shared/ folder"
        )
    return path


def scene_dir() -> Path:
    return shared_dir() / SCENES


def all_scene_names() -> list[str]:
    """Every scene photo, sorted (13 photos, 0 to 6 faces each; see the folder's MANIFEST.md)."""
    names = sorted(p.name for p in scene_dir().iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not names:
        raise FileNotFoundError(f"no scene photos in {scene_dir()}")
    return names


@dataclass(frozen=True, eq=False)
class Frame:
    """One BGR uint8 frame of a named photo at one of the benchmark's sizes."""

    photo: str
    size: str
    image: np.ndarray

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def parse_size(label: str) -> tuple[int, int] | None:
    """``"640x480"`` → (640, 480); ``"native"`` → None (the photo as decoded)."""
    if label == NATIVE:
        return None
    try:
        width, height = (int(part) for part in label.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"frame size {label!r} is not WIDTHxHEIGHT or {NATIVE!r}") from exc
    if width < 16 or height < 16:
        raise ValueError(f"frame size {label!r} is too small")
    return width, height


def read_photo(name: str) -> np.ndarray:
    path = scene_dir() / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read scene photo {path}: see {SCENES}/MANIFEST.md")
    return image


def resize(image: np.ndarray, label: str) -> np.ndarray:
    """The photo stretched to the size (a camera's fixed resolution), or unchanged for ``native``."""
    target = parse_size(label)
    if target is None:
        return image
    shrinking = target[0] * target[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, target, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def load_frames(photos: list[str], sizes: list[str]) -> dict[str, list[Frame]]:
    """Frames per size label, in the order of ``photos``."""
    originals = {name: read_photo(name) for name in photos}
    return {size: [Frame(name, size, resize(originals[name], size)) for name in photos] for size in sizes}
