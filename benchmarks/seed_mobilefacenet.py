"""THE SEED'S EMBEDDER, for benchmarks only: MobileFaceNet (Chen et al. 2018) as the seed ran it.

The seed embedded faces with the MobileFaceNet of the InsightFace_Pytorch project: 112×112 RGB chips
aligned to the ArcFace five-point template, normalised to [-1, 1], a 512-D output L2-normalised, one
face per forward pass with autograd on (its ``infer`` loops over the faces and calls the model with
no ``no_grad``). Its trained weights are not available to rollcall, and the cost of a forward pass does
not depend on their values, so this network is randomly initialised: it measures what the seed's way
of embedding costs, never what it recognises (the seed's names in ``benchmarks.seed_way`` come from
rollcall's embedder, so both sides answer correctly).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

CHIP_SIZE = 112
EMBEDDING_DIM = 512
# The ArcFace template (InsightFace's reference five points for a 112×112 square chip): left eye,
# right eye, nose, left and right mouth corners, (x, y) in chip pixels.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def _conv(
    in_c: int, out_c: int, kernel: int, stride: int, padding: int, groups: int = 1, act: bool = True
) -> nn.Sequential:
    """Convolution without bias, batch norm, and PReLU unless ``act`` is off (a linear bottleneck)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_c),
    ]
    if act:
        layers.append(nn.PReLU(out_c))
    return nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    """Expand (1×1), depthwise 3×3, project (1×1, linear); a residual sum when shapes allow."""

    def __init__(self, in_c: int, out_c: int, expanded: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(in_c, expanded, 1, 1, 0),
            _conv(expanded, expanded, 3, stride, 1, groups=expanded),
            _conv(expanded, out_c, 1, 1, 0, act=False),
        )
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileFaceNet(nn.Module):
    """The seed's embedding network: [N, 3, 112, 112] floats in [-1, 1] → [N, 512] unit vectors."""

    def __init__(self) -> None:
        super().__init__()
        # (in channels, out channels, expanded channels, stride, repeats) of each bottleneck stage.
        stages = ((64, 64, 128, 2, 1), (64, 64, 128, 1, 4), (64, 128, 256, 2, 1), (128, 128, 256, 1, 6))
        stages += ((128, 128, 512, 2, 1), (128, 128, 256, 1, 2))
        blocks: list[nn.Module] = [_conv(3, 64, 3, 2, 1), _conv(64, 64, 3, 1, 1, groups=64)]
        for in_c, out_c, expanded, stride, repeats in stages:
            for _ in range(repeats):
                blocks.append(_Bottleneck(in_c, out_c, expanded, stride, residual=stride == 1))
        blocks += [_conv(128, 512, 1, 1, 0), _conv(512, 512, 7, 1, 0, groups=512, act=False)]
        self.features = nn.Sequential(*blocks)
        self.linear = nn.Linear(512, EMBEDDING_DIM, bias=False)
        self.bn = nn.BatchNorm1d(EMBEDDING_DIM)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn(self.linear(self.features(x).flatten(1)))
        return out / out.norm(dim=1, keepdim=True)


def seed_embedder(seed: int = 0) -> MobileFaceNet:
    """The network in eval mode, randomly initialised from ``seed`` (its cost is what is measured)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return MobileFaceNet().eval()
    finally:
        torch.random.set_rng_state(generator_state)


def embed_one_face(network: MobileFaceNet, chip_rgb: np.ndarray) -> Tensor:
    """One chip ([112, 112, 3] uint8 RGB) through the network the seed's way: its own forward, autograd
    on (as the seed's ``infer``: no ``no_grad``), the input normalised as its test transform does."""
    pixels = torch.from_numpy(np.ascontiguousarray(chip_rgb)).permute(2, 0, 1).float().div(255.0)
    return network(((pixels - 0.5) / 0.5).unsqueeze(0))
