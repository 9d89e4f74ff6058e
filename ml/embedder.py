"""The one interface every face embedder implements, so the pipeline can swap models by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import numpy as np
import torch
from torch import nn

import errors
from ml.engines import EngineLoader, NetSpec, torch_loader
from ml.engines.sessions import Session, TorchSession
from ml.quantize import choose_precision
from ml.weights import ModelStore


class Embedder(ABC):
    """Turns aligned face chips into L2-normalised embeddings compared by cosine similarity.

    ``template`` holds where the five MTCNN landmarks (left eye, right eye, nose, left mouth,
    right mouth; x, y in chip pixels) must land for this model, so ``ml.align`` can cut chips
    that look like the model's training crops. ``network`` holds the weights; ``session`` runs it
    (the module itself on torch, or its conversion on another engine), chosen once when it is built.
    """

    name: str
    version: str
    dim: int
    chip_size: int
    template: np.ndarray
    default_threshold: float

    def __init__(
        self,
        network: nn.Module,
        device: torch.device | str,
        session: Session | None = None,
        precision: str = "float32",
        engine: str = "torch",
    ) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.session = session or TorchSession(self.network)
        self.precision = precision  # or int8 (ml.quantize)
        self.engine = engine

    @classmethod
    def from_store(
        cls,
        store: ModelStore,
        device: torch.device | str,
        loader: EngineLoader | None = None,
        precision: str = "float32",
    ) -> Self:
        """The embedder with its verified weights from the model store, its network run by ``loader``'s
        engine (torch when None) in ``precision``: ``float32``, ``int8`` or ``auto``
        (``ml.quantize.choose_precision``); ``errors.WeightsMissing`` says how to fetch the weights."""
        loader = loader or torch_loader(store)
        network = cls.load_network(store).to(torch.device(device))
        precision, session = choose_precision(precision, loader, cls)
        session = session or loader.session(network, cls.net_spec())
        return cls(network, device, session=session, precision=precision, engine=loader.engine)

    @classmethod
    @abstractmethod
    def load_network(cls, store: ModelStore) -> nn.Module:
        """The network with the model's verified weights from the model store (on the CPU)."""

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

    @classmethod
    @abstractmethod
    def example_input(cls) -> torch.Tensor:
        """One input of ``network`` (batch of 1), for converting it to another engine."""

    @classmethod
    def net_spec(cls) -> NetSpec:
        """``network`` as an engine converts it: batch axis dynamic, one output."""
        return NetSpec(cls.name, cls.name, (cls.example_input(),), ({0: "batch"},), ("embedding",))

    def run_network(self, batch: torch.Tensor) -> torch.Tensor:
        """``network``'s output for ``batch``, on the engine in use."""
        return self.session.run(batch)[0].to(batch.device)
