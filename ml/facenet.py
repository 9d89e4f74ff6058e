"""FaceNet (Inception-ResNet-v1, 512-D) trained on VGGFace2, as released by facenet-pytorch.

The module tree mirrors facenet-pytorch 2.6.0's ``InceptionResnetV1`` attribute for attribute, so its
released ``20180402-114759-vggface2.pt`` loads with ``strict=True`` (minus the classifier head,
see ``load_facenet_state_dict``). facenet-pytorch itself cannot be a dependency: it pins torch<2.3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ml.embedder import Embedder
from ml.weights import ModelStore, load_state_dict

WEIGHTS_NAME = "facenet_vggface2"
EMBEDDING_DIM = 512
CHIP_SIZE = 160

# Where the five MTCNN landmarks lie in a 160x160 chip framed like the crops facenet-pytorch users feed
# this model: ``MTCNN(image_size=160, margin=14)`` (its LFW evaluation setting) grows the MTCNN box by
# 14 output pixels and resizes it to 160x160. MTCNN boxes are ~0.73 as wide as tall, so that resize
# also stretches faces ~1.37x sideways, which a similarity transform cannot do: we keep the box crop's
# vertical scale and position, keep the face's true proportions, and centre it on the box centre
# (the sides then show real context instead of a stretched face).
# Derived from the 21 real faces (prob >= 0.99) of oracles/mtcnn_facenet_pytorch/reference.json:
# landmarks mapped into that frame, averaged, made left-right symmetric (so a flipped chip fits the
# same template), rounded to 0.01; tests/ml/test_facenet.py re-derives it.
FACENET_CHIP_TEMPLATE = np.array(
    [[55.41, 65.79], [104.59, 65.79], [80.0, 96.79], [56.93, 116.13], [103.07, 116.13]], dtype=np.float32
)

# Provisional until calibrated on our facebank: facenet-pytorch users commonly accept a pair below
# Euclidean distance 1.1 between unit vectors, and |a - b|^2 = 2 - 2 cos, so cos >= 1 - 1.1^2 / 2.
DEFAULT_THRESHOLD = 1.0 - 1.1**2 / 2.0


class BasicConv2d(nn.Module):
    """Bias-free convolution, batch norm (TensorFlow's eps 1e-3: the weights come from TF) and ReLU."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class _Concat(nn.Module):
    """Runs the ``branch0..n`` attributes on one input and concatenates them along channels."""

    def _register_branches(self, branches: Sequence[nn.Module]) -> None:
        self.n_branches = len(branches)
        for i, branch in enumerate(branches):
            self.add_module(f"branch{i}", branch)

    def _branches(self, x: Tensor) -> Tensor:
        return torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.n_branches)], dim=1)


class ResidualBlock(_Concat):
    """Inception-ResNet block: branches, 1x1 projection back to ``channels``, scaled residual sum."""

    def __init__(
        self, channels: int, branches: Sequence[nn.Module], concat: int, scale: float, relu: bool
    ) -> None:
        super().__init__()
        self.scale = scale
        self._register_branches(branches)
        self.conv2d = nn.Conv2d(concat, channels, kernel_size=1, stride=1)
        self.relu = nn.ReLU(inplace=False) if relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv2d(self._branches(x)) * self.scale + x)


class Reduction(_Concat):
    """Grid reduction (Mixed_6a / Mixed_7a): parallel stride-2 branches, concatenated."""

    def __init__(self, branches: Sequence[nn.Module]) -> None:
        super().__init__()
        self._register_branches(branches)

    def forward(self, x: Tensor) -> Tensor:
        return self._branches(x)


def block35(scale: float = 1.0) -> ResidualBlock:
    """Inception-ResNet-A on the 35x35 (here 17x17) grid, 256 channels."""
    return ResidualBlock(
        256,
        [
            BasicConv2d(256, 32, 1),
            nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
            nn.Sequential(
                BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1), BasicConv2d(32, 32, 3, padding=1)
            ),
        ],
        concat=96,
        scale=scale,
        relu=True,
    )


def block17(scale: float = 1.0) -> ResidualBlock:
    """Inception-ResNet-B, 896 channels, factorised 7x7."""
    return ResidualBlock(
        896,
        [
            BasicConv2d(896, 128, 1),
            nn.Sequential(
                BasicConv2d(896, 128, 1),
                BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
                BasicConv2d(128, 128, (7, 1), padding=(3, 0)),
            ),
        ],
        concat=256,
        scale=scale,
        relu=True,
    )


def block8(scale: float = 1.0, relu: bool = True) -> ResidualBlock:
    """Inception-ResNet-C, 1792 channels, factorised 3x3."""
    return ResidualBlock(
        1792,
        [
            BasicConv2d(1792, 192, 1),
            nn.Sequential(
                BasicConv2d(1792, 192, 1),
                BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
                BasicConv2d(192, 192, (3, 1), padding=(1, 0)),
            ),
        ],
        concat=384,
        scale=scale,
        relu=relu,
    )


def mixed_6a() -> Reduction:
    return Reduction(
        [
            BasicConv2d(256, 384, 3, stride=2),
            nn.Sequential(
                BasicConv2d(256, 192, 1),
                BasicConv2d(192, 192, 3, padding=1),
                BasicConv2d(192, 256, 3, stride=2),
            ),
            nn.MaxPool2d(3, stride=2),
        ]
    )


def mixed_7a() -> Reduction:
    return Reduction(
        [
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2)),
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2)),
            nn.Sequential(
                BasicConv2d(896, 256, 1),
                BasicConv2d(256, 256, 3, padding=1),
                BasicConv2d(256, 256, 3, stride=2),
            ),
            nn.MaxPool2d(3, stride=2),
        ]
    )


class InceptionResnetV1(nn.Module):
    """The embedding network: [N,3,160,160] standardised RGB → [N,512] (before L2 normalisation).

    Inference only: facenet-pytorch's dropout (a no-op in eval) and classifier head are left out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[block35(scale=0.17) for _ in range(5)])
        self.mixed_6a = mixed_6a()
        self.repeat_2 = nn.Sequential(*[block17(scale=0.10) for _ in range(10)])
        self.mixed_7a = mixed_7a()
        self.repeat_3 = nn.Sequential(*[block8(scale=0.20) for _ in range(5)])
        self.block8 = block8(relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.last_linear = nn.Linear(1792, EMBEDDING_DIM, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBEDDING_DIM, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        """Features before normalisation (``last_bn``'s output); callers L2-normalise."""
        for stage in (
            self.conv2d_1a,
            self.conv2d_2a,
            self.conv2d_2b,
            self.maxpool_3a,
            self.conv2d_3b,
            self.conv2d_4a,
            self.conv2d_4b,
            self.repeat_1,
            self.mixed_6a,
            self.repeat_2,
            self.mixed_7a,
            self.repeat_3,
            self.block8,
            self.avgpool_1a,
        ):
            x = stage(x)
        return self.last_bn(self.last_linear(x.flatten(1)))


def load_facenet_state_dict(model: InceptionResnetV1, state: Mapping[str, Tensor]) -> None:
    """Load a facenet-pytorch state dict strictly, dropping only the training classifier head.

    The released vggface2 file carries ``logits.weight``/``logits.bias`` (8631 VGGFace2 identities);
    embeddings never use them, and every other key must match exactly.
    """
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")}, strict=True)


def standardise(chips: Tensor) -> Tensor:
    """[N,S,S,3] uint8 RGB → [N,3,S,S] float (x − 127.5) / 128, facenet-pytorch's standardisation."""
    return (chips.permute(0, 3, 1, 2).float() - 127.5) / 128.0


class FaceNetEmbedder(Embedder):
    """512-D FaceNet embeddings of 160x160 chips aligned to ``FACENET_CHIP_TEMPLATE``."""

    name = WEIGHTS_NAME
    version = "20180402-114759-vggface2"
    dim = EMBEDDING_DIM
    chip_size = CHIP_SIZE
    template = FACENET_CHIP_TEMPLATE
    default_threshold = DEFAULT_THRESHOLD

    @classmethod
    def load_network(cls, store: ModelStore) -> InceptionResnetV1:
        network = InceptionResnetV1()
        load_facenet_state_dict(network, load_state_dict(store.path(WEIGHTS_NAME)))
        return network

    @classmethod
    def example_input(cls) -> Tensor:
        return torch.zeros(1, 3, CHIP_SIZE, CHIP_SIZE)

    def embed(self, chips_rgb: np.ndarray) -> np.ndarray:
        self.check_chips(chips_rgb)
        if len(chips_rgb) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            batch = standardise(torch.from_numpy(chips_rgb).to(self.device))
            return F.normalize(self.run_network(batch), p=2, dim=1).cpu().numpy()
