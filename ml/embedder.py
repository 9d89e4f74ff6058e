"""The one interface every face embedder implements, so the pipeline can swap models by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

import errors

if TYPE_CHECKING:
    import torch

    from ml.weights import ModelStore


class Embedder(ABC):
    """Turns aligned face chips into L2-normalised embeddings compared by cosine similarity.

    ``template`` holds where the five MTCNN landmarks (left eye, right eye, nose, left mouth,
    right mouth; x, y in chip pixels) must land for this model, so ``ml.align`` can cut chips
    that look like the model's training crops.
    """

    name: str
    version: str
    dim: int
    chip_size: int
    template: np.ndarray
    default_threshold: float

    @classmethod
    @abstractmethod
    def from_store(cls, store: ModelStore, device: torch.device | str) -> Embedder:
        """Load the model's verified weights from the model store onto ``device``."""

    @abstractmethod
    def embed(self, chips_rgb: np.ndarray) -> np.ndarray:
        """[N,S,S,3] uint8 RGB chips → [N,dim] float32 unit vectors, in one batched forward (N may be 0)."""

    def check_chips(self, chips_rgb: np.ndarray) -> None:
        """Reject chips of the wrong shape or type before they reach the network."""
        size = self.chip_size
        if chips_rgb.dtype != np.uint8 or chips_rgb.ndim != 4 or chips_rgb.shape[1:] != (size, size, 3):
            raise errors.InvalidInput(
                f"{self.name} expects uint8 RGB chips of shape [N,{size},{size},3], "
                f"got {chips_rgb.dtype} {tuple(chips_rgb.shape)}"
            )
