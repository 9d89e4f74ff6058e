"""dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1``), in PyTorch.

The architecture is ``anet_type`` of dlib's examples/dnn_face_recognition_ex.cpp; the weights are read
from dlib's own ``.dat`` file by ``ml.dlib_format``, layer by layer, with every layer's kind, shape,
stride and padding checked against this module tree. Two dlib conventions matter for exact outputs:
``con`` and ``avg_pool`` pad only when their stride is 1 (so stride-2 3x3 convolutions pad nothing),
and ``add_prev`` adds tensors of different shapes by zero-filling the smaller one at the far end of
each dimension (in the last two down-sampling blocks the pooled shortcut is a pixel wider than the
convolved branch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import errors
from ml import dlib_format as fmt
from ml.align import DLIB_CHIP_TEMPLATE  # measured with MTCNN on dlib's own chips
from ml.embedder import Embedder
from ml.engines.sessions import Session
from ml.weights import ModelStore

WEIGHTS_NAME = "dlib_resnet_v1"
EMBEDDING_DIM = 128
CHIP_SIZE = 150
# First 12 hex digits of the weights' sha256 (ml.weights.REGISTRY): names the exact model in results.
WEIGHTS_VERSION = "55533b28a958"

# Provisional until calibrated on our facebank: dlib documents Euclidean distance 0.6 between its raw
# descriptors as "same person". Those are not unit vectors: their norms are 1.32-1.63, mean 1.455, over
# the 42 faces of oracles/dlib_resnet_v1. For two vectors of norm r, |a - b|^2 = 2 r^2 (1 - cos), so the
# same boundary is cos = 1 - 0.6^2 / (2 * 1.455^2) = 0.915. (Assuming unit vectors would give 0.82,
# which accepts 91 of the 190 different-person pairs among those faces.)
DLIB_DISTANCE_THRESHOLD = 0.6
TYPICAL_DESCRIPTOR_NORM = 1.455
DEFAULT_THRESHOLD = 1.0 - DLIB_DISTANCE_THRESHOLD**2 / (2.0 * TYPICAL_DESCRIPTOR_NORM**2)

# (filters, down-sampling blocks, plain blocks) from the input up: alevel4 .. alevel0 of the example.
LEVELS = ((32, 0, 3), (64, 1, 3), (128, 1, 2), (256, 1, 2), (256, 1, 0))

_L = TypeVar("_L")


class Affine(nn.Module):
    """dlib's ``affine`` (its batch norm, frozen): ``gamma * x + beta`` per channel."""

    gamma: Tensor
    beta: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("gamma", torch.ones(channels))
        self.register_buffer("beta", torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def add_prev(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, each input zero-filled where it is smaller."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: Tensor) -> Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return grow(a) + grow(b)


class ResidualBlock(nn.Module):
    """``ares`` / ``ares_down``: relu(block(x) + shortcut(x)); down-sampling pools the shortcut 2x2."""

    def __init__(self, in_channels: int, out_channels: int, down: bool) -> None:
        super().__init__()
        self.down = down
        # dlib's con pads kernel/2 only at stride 1.
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=2 if down else 1, padding=0 if down else 1
        )
        self.affine1 = Affine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.affine2 = Affine(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        branch = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(branch, shortcut))


class DlibResNet(nn.Module):
    """uint8 RGB chips [N,150,150,3] → dlib's raw 128-D face descriptors (not normalised)."""

    pixel_mean: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", torch.zeros(3))
        self.conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine = Affine(32)
        blocks = []
        channels = 32
        for filters, down, plain in LEVELS:
            for i in range(down + plain):
                blocks.append(ResidualBlock(channels, filters, down=i < down))
                channels = filters
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, EMBEDDING_DIM, bias=False)

    def forward(self, chips_rgb: Tensor) -> Tensor:
        # dlib's input_rgb_image_sized: planar RGB, (pixel - mean) / 256.
        x = (chips_rgb.permute(0, 3, 1, 2).float() - self.pixel_mean[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def load_dlib_network(network: DlibResNet, parsed: fmt.DlibNetwork) -> None:
    """Copy a parsed dlib file into ``network``, checking each layer against the module tree."""
    if (parsed.input.rows, parsed.input.cols) != (CHIP_SIZE, CHIP_SIZE):
        raise errors.WeightsCorrupt(f"dlib network expects {parsed.input.rows}x{parsed.input.cols} chips")
    layers = _Layers(parsed.layers)
    with torch.no_grad():
        network.pixel_mean.copy_(torch.tensor(parsed.input.mean_rgb))
        layers.con(network.conv)
        layers.affine(network.affine)
        layers.take(fmt.Relu)
        layers.pool("max", (3, 3), (2, 2))
        for block in network.blocks:
            assert isinstance(block, ResidualBlock)
            layers.take(fmt.TagOrSkip)  # tag1: the block's input
            layers.con(block.conv1)
            layers.affine(block.affine1)
            layers.take(fmt.Relu)
            layers.con(block.conv2)
            layers.affine(block.affine2)
            if block.down:
                layers.take(fmt.TagOrSkip)  # tag2: the branch
                layers.take(fmt.TagOrSkip)  # skip1: back to the block's input
                layers.pool("avg", (2, 2), (2, 2))
            layers.take(fmt.AddPrev)
            layers.take(fmt.Relu)
        layers.pool("avg", (0, 0), (1, 1))  # avg_pool_everything
        fc = layers.take(fmt.Fc)
        if fc.biases is not None or fc.weights.shape != (network.fc.in_features, network.fc.out_features):
            raise layers.mismatch(f"fc_no_bias {network.fc.in_features} -> {network.fc.out_features}", fc)
        network.fc.weight.copy_(torch.from_numpy(fc.weights.T))
        layers.finish()


class _Layers:
    """The parsed layers consumed in order, each checked for kind and shape before it is copied."""

    def __init__(self, layers: tuple[fmt.Layer, ...]) -> None:
        self._iter: Iterator[fmt.Layer] = iter(layers)
        self._index = -1

    def mismatch(self, expected: str, found: object) -> errors.WeightsCorrupt:
        return errors.WeightsCorrupt(
            f"dlib network layer {self._index} (from the input) is {_describe(found)}, expected {expected}: "
            f"this is not dlib_face_recognition_resnet_model_v1"
        )

    def take(self, kind: type[_L]) -> _L:
        self._index += 1
        layer = next(self._iter, None)
        if not isinstance(layer, kind):
            raise self.mismatch(kind.__name__, layer)
        return layer

    def con(self, conv: nn.Conv2d) -> None:
        layer = self.take(fmt.Con)
        if (
            layer.filters.shape != tuple(conv.weight.shape)
            or layer.stride != conv.stride
            or layer.padding != conv.padding
        ):
            raise self.mismatch(
                f"con {tuple(conv.weight.shape)} stride {conv.stride} pad {conv.padding}", layer
            )
        conv.weight.copy_(torch.from_numpy(layer.filters))
        assert conv.bias is not None
        conv.bias.copy_(torch.from_numpy(layer.biases))

    def affine(self, affine: Affine) -> None:
        layer = self.take(fmt.Affine)
        if not layer.conv_mode or layer.gamma.shape != tuple(affine.gamma.shape):
            raise self.mismatch(f"affine over {affine.gamma.shape[0]} channels", layer)
        affine.gamma.copy_(torch.from_numpy(layer.gamma))
        affine.beta.copy_(torch.from_numpy(layer.beta))

    def pool(self, kind: str, window: tuple[int, int], stride: tuple[int, int]) -> None:
        layer = self.take(fmt.Pool)
        if (layer.kind, layer.window, layer.stride, layer.padding) != (kind, window, stride, (0, 0)):
            raise self.mismatch(f"{kind}_pool {window} stride {stride}", layer)

    def finish(self) -> None:
        extra = next(self._iter, None)
        if extra is not None:
            self._index += 1
            raise self.mismatch("the end of the network", extra)


def _describe(layer: object) -> str:
    if layer is None:
        return "missing"
    if isinstance(layer, fmt.Con):
        return f"con {layer.filters.shape} stride {layer.stride} pad {layer.padding}"
    if isinstance(layer, (fmt.Affine, fmt.Fc)):
        shape = layer.gamma.shape if isinstance(layer, fmt.Affine) else layer.weights.shape
        return f"{type(layer).__name__} {shape}"
    return repr(layer)


class DlibResNetEmbedder(Embedder):
    """128-D dlib ResNet embeddings of 150x150 chips, L2-normalised for cosine matching."""

    name = WEIGHTS_NAME
    version = WEIGHTS_VERSION
    dim = EMBEDDING_DIM
    chip_size = CHIP_SIZE
    template = DLIB_CHIP_TEMPLATE
    default_threshold = DEFAULT_THRESHOLD

    def __init__(
        self,
        network: DlibResNet,
        device: torch.device | str,
        batch_size: int = 64,
        session: Session | None = None,
        precision: str = "float32",
        engine: str = "torch",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        super().__init__(network, device, session, precision, engine)
        self.batch_size = batch_size

    @classmethod
    def load_network(cls, store: ModelStore) -> DlibResNet:
        network = DlibResNet()
        load_dlib_network(network, fmt.read_dlib_network(store.path(WEIGHTS_NAME)))
        return network

    @classmethod
    def example_input(cls) -> Tensor:
        return torch.zeros(1, CHIP_SIZE, CHIP_SIZE, 3, dtype=torch.uint8)

    def descriptors(self, chips_rgb: np.ndarray) -> np.ndarray:
        """dlib's raw descriptors ([N,128] float32, norm near but not exactly 1)."""
        with torch.inference_mode():
            return self._forward(chips_rgb).cpu().numpy()

    def embed(self, chips_rgb: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return F.normalize(self._forward(chips_rgb), p=2, dim=1).cpu().numpy()

    def _forward(self, chips_rgb: np.ndarray) -> Tensor:
        """Raw descriptors on the device, computed in chunks of ``batch_size`` chips."""
        self.check_chips(chips_rgb)
        if len(chips_rgb) == 0:
            return torch.zeros((0, self.dim), device=self.device)
        chips = torch.from_numpy(chips_rgb)
        return torch.cat(
            [
                self.run_network(chips[i : i + self.batch_size].to(self.device))
                for i in range(0, len(chips), self.batch_size)
            ]
        )
