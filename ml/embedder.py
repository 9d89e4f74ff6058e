"""The one interface every face embedder implements, so the pipeline can swap models by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

import errors

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ml.engines import EngineLoader, NetSpec, Runner
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
    network: nn.Module
    engine: str = "torch"
    precision: str = "float32"  # or int8 (ml.quantize)
    _runner: Runner | None = None

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

    @abstractmethod
    def example_input(self) -> torch.Tensor:
        """One input of ``network`` (batch of 1), for converting it to another engine."""

    def net_spec(self) -> NetSpec:
        """``network`` as an engine converts it: batch axis dynamic, one output."""
        from ml.engines import NetSpec

        return NetSpec(self.name, self.name, (self.example_input(),), ({0: "batch"},), ("embedding",))

    def use_engine(self, loader: EngineLoader, precision: str = "float32") -> None:
        """Run ``network`` on ``loader``'s engine (converted once, from the same verified weights), in
        ``precision``: ``float32``, ``int8`` or ``auto`` (``ml.quantize.choose_precision``)."""
        from ml.quantize import choose_precision

        self.precision, runner = choose_precision(precision, loader, self)
        self._runner = runner or loader.load(self.network, self.net_spec())
        self.engine = loader.engine

    def run_network(self, batch: torch.Tensor) -> torch.Tensor:
        """``network``'s output for ``batch``, on the engine in use."""
        if self._runner is None:
            return self.network(batch)
        return self._runner(batch)[0].to(batch.device)
