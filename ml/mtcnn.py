"""Batched MTCNN face detection (Zhang et al. 2016) with facenet-pytorch's weights and numerics.

The three networks keep facenet-pytorch's module and parameter names, so its ``pnet.pt``/``rnet.pt``/
``onet.pt`` state dicts load unchanged, and the cascade follows its ``detect_face`` step by step (pyramid
resampling, box regression, ``rerec``, ``pad``, the final "Min" NMS) so results match its detector.
What differs is batching: frames of any sizes go through together; the pyramid levels of every frame are
packed into one canvas so P-Net runs once per frame size, not once per level (see ``_PyramidCanvas``;
many frames of one size go in calls of a bounded canvas area, ``_PNET_PIXELS``), and
R-Net/O-Net see the candidates of every frame at once. The pyramid levels and the R-/O-Net crops are
area-resampled from integral images by compiled loops (``ml.resample``), with facenet-pytorch's float32
results. All inputs are channels-last in memory (2–3× faster convolutions on the CPU), and the networks
run as the sessions the detector was built with (``ml.engines``): torch by default, P-Net in bands on
the CPU (``_PNetInBands``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms

import errors
from ml.engines import EngineLoader, NetSpec, torch_loader
from ml.engines.sessions import Session
from ml.resample import ResampleThreads, SummedAreaTables, compile_kernels
from ml.timing import StageTimer
from ml.weights import ModelStore, load_state_dict

# Constants of the MTCNN paper / facenet-pytorch's detect_face.
_PNET_STRIDE = 2
_PNET_CELL = 12
_PNET_NMS_PER_SCALE = 0.5
_NMS = 0.7
_RNET_SIZE = 24
_ONET_SIZE = 48
_CHUNK = 1024  # candidates per R-Net/O-Net forward: bounds memory on frames with thousands of candidates
# Canvas pixels per P-Net forward: bounds memory when many frames of one size come at once (the small-face
# mode's tiles). Its intermediate maps take ~200 bytes per canvas pixel, and the OpenVINO engine keeps
# buffers sized for the largest call it has seen; one 640x480 frame's canvas is ~0.3 MP.
_PNET_PIXELS = 1 << 22
_CANVASES_KEPT = 8  # frame sizes whose pyramid geometry a detector keeps (a canvas's mask: 4 bytes a pixel)
# Canvas pixels per P-Net call on the torch engine on the CPU (``_PNetInBands``): about 5 MB a map of
# P-Net's first layer, which stays in a core's share of the CPU caches.
_PNET_BAND_PIXELS = 1 << 17


@dataclass(frozen=True)
class MTCNNParams:
    """Detection parameters; the defaults are facenet-pytorch's (and the reference oracle's)."""

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    # Largest face to look for (None: up to the whole frame). The small-face tiles set it: the whole
    # frame already found the large faces, and the pyramid's coarse levels would only find them again.
    max_face_size: int | None = None

    def __post_init__(self) -> None:
        if self.min_face_size < 1:
            raise errors.InvalidInput(f"min_face_size must be at least 1 pixel, got {self.min_face_size}")
        if not 0.0 < self.factor < 1.0:
            raise errors.InvalidInput(f"factor must be between 0 and 1, got {self.factor}")
        if len(self.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise errors.InvalidInput(f"thresholds must be three probabilities, got {self.thresholds}")

    def scales(self, height: int, width: int) -> list[float]:
        """The image pyramid: scales at which a ``min_face_size`` face becomes P-Net's 12-pixel cell."""
        m = _PNET_CELL / self.min_face_size
        min_side = min(height, width) * m
        scales = []
        scale = m
        smallest_scale = _PNET_CELL / self.max_face_size if self.max_face_size else 0.0
        while min_side >= _PNET_CELL and scale >= smallest_scale:
            scales.append(scale)
            scale *= self.factor
            min_side *= self.factor
        return scales


@dataclass(frozen=True, eq=False)
class Detections:
    """Faces found in one frame, most probable first; empty arrays (not None) when there is none."""

    boxes: np.ndarray  # float32 [N, 4]: x1, y1, x2, y2 in pixels (may reach past the frame's edge)
    probs: np.ndarray  # float32 [N]
    landmarks: np.ndarray  # float32 [N, 5, 2]: left eye, right eye, nose, left mouth, right mouth; (x, y)

    def __len__(self) -> int:
        return len(self.probs)


class PNet(nn.Module):
    """Proposal network: a fully convolutional face/non-face classifier over 12×12 cells."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``mask`` ([1, 1, H-2, W-2]) is added after the first layer: 0 where a pyramid level's first-layer
        outputs lie, -inf between levels packed in one canvas, so that max-pooling at a level's edge sees
        what it sees when the level runs alone (its ``ceil_mode`` window holds one real column there).
        Without a mask the input is one plain image (one pyramid level), as in the original network."""
        x = self.prelu1(self.conv1(x))
        if mask is not None:
            x = x + mask
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network over 24×24 crops: face probability and box regression."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()  # the weights were converted from a (W, H, C) flattening
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network over 48×48 crops: face probability, box regression and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


@dataclass
class _Candidates:
    """Boxes of all frames in one tensor each; ``frame`` says which frame a row belongs to."""

    boxes: Tensor  # float32 [K, 4]
    scores: Tensor  # float32 [K]
    frame: Tensor  # int64 [K]

    def __getitem__(self, keep: Tensor) -> _Candidates:
        return _Candidates(self.boxes[keep], self.scores[keep], self.frame[keep])

    def __len__(self) -> int:
        return self.scores.shape[0]

    @staticmethod
    def cat(parts: Sequence[_Candidates]) -> _Candidates:
        return _Candidates(
            torch.cat([c.boxes for c in parts]),
            torch.cat([c.scores for c in parts]),
            torch.cat([c.frame for c in parts]),
        )


class _Frames:
    """The frames of one ``detect`` call: their summed-area tables, from which the pyramid levels and every
    R-/O-Net crop are area-resampled (``ml.resample``), and their sizes on the device."""

    def __init__(
        self, frames_bgr: Sequence[np.ndarray], device: torch.device, threads: ResampleThreads
    ) -> None:
        # RGB exactly as the reference oracle got it: cv2.cvtColor(BGR2RGB).
        self.sums = SummedAreaTables(
            [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_BGR2RGB) for f in frames_bgr], threads
        )
        self.sizes = [(int(f.shape[0]), int(f.shape[1])) for f in frames_bgr]
        self.height = torch.tensor([h for h, _ in self.sizes], dtype=torch.int64, device=device)
        self.width = torch.tensor([w for _, w in self.sizes], dtype=torch.int64, device=device)
        self.device = device

    def __len__(self) -> int:
        return len(self.sizes)

    def crops(self, frame: Tensor, x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor, size: int) -> Tensor:
        """``[N, 3, size, size]`` normalised crops ``[y0:y1, x0:x1]`` (non-empty, inside their frame),
        area-resampled; channels-last in memory (two to three times faster R-Net and O-Net on the CPU)."""
        boxes = torch.stack([x0, y0, x1, y1], dim=1).cpu().numpy()
        return _on_device(self.sums.crops(frame.cpu().numpy(), boxes, size), self.device)


@dataclass(frozen=True)
class _Level:
    """One pyramid level's place in the canvas: top-left corner (even, so max-pooling windows line up)."""

    y: int
    x: int
    height: int
    width: int
    scale: float

    @property
    def cells(self) -> tuple[int, int]:
        """P-Net's output size on this level alone (3×3 conv, 2×2 ceil pool, two 3×3 convs)."""
        return math.ceil((self.height - 2) / 2) - 4, math.ceil((self.width - 2) / 2) - 4


class _PyramidCanvas:
    """All pyramid levels of a frame size packed on shelves in one canvas, for one P-Net call.

    The largest level sets the width; smaller ones go left to right on shelves below it. A P-Net cell
    depends only on its 12×12 window, so cells inside a level equal the cells of that level run alone;
    the one exception, max-pooling at a level's right and bottom edge, is handled by P-Net's mask.
    Everything here depends only on the frame size and the scales, so the detector keeps a few canvases
    (a camera sends frames of one size) and reuses their bins, mask and cell maps.
    """

    def __init__(self, height: int, width: int, scales: Sequence[float], device: torch.device) -> None:
        levels: list[_Level] = []
        canvas_w = _even(int(width * scales[0] + 1))
        x = y = shelf = 0
        for scale in scales:
            h, w = int(height * scale + 1), int(width * scale + 1)
            if x + w > canvas_w:
                x, y, shelf = 0, y + shelf, 0
            levels.append(_Level(y, x, h, w, scale))
            x += _even(w)
            shelf = max(shelf, _even(h))
        self.levels = levels
        self.height = y + shelf
        self.width = canvas_w
        self.mask = self._mask(device)
        self._cell_maps(device)

    def images(self, frames: _Frames, chosen: Sequence[int]) -> Tensor:
        """``[N, 3, H, W]`` normalised canvases of the ``chosen`` frames (channels-last in memory): each
        level area-resampled straight into its place in the canvas."""
        canvas = np.zeros((len(chosen), self.height, self.width, 3), dtype=np.float32)
        places = [
            (i, canvas[k, level.y : level.y + level.height, level.x : level.x + level.width])
            for k, i in enumerate(chosen)
            for level in self.levels
        ]
        frames.sums.resample_wholes_into([i for i, _ in places], [place for _, place in places])
        return _on_device(canvas, frames.device)

    def _mask(self, device: torch.device) -> Tensor:
        """``[1, 1, H-2, W-2]``: 0 over each level's first-layer outputs, -inf elsewhere."""
        mask = torch.full((1, 1, self.height - 2, self.width - 2), -math.inf, device=device)
        for level in self.levels:
            mask[..., level.y : level.y + level.height - 2, level.x : level.x + level.width - 2] = 0.0
        return mask

    def _cell_maps(self, device: torch.device) -> None:
        """Which level each P-Net output cell of the canvas belongs to (-1: none), and per level the
        first cell's (row, column) and the scale, to decode all levels' cells in one pass."""
        out_h, out_w = math.ceil((self.height - 2) / 2) - 4, math.ceil((self.width - 2) / 2) - 4
        self.cell_level = torch.full((out_h, out_w), -1, dtype=torch.int64, device=device)
        for index, level in enumerate(self.levels):
            rows, cols = level.cells
            y, x = level.y // 2, level.x // 2
            self.cell_level[y : y + rows, x : x + cols] = index
        self.cell_origin = torch.tensor(
            [(level.y // 2, level.x // 2) for level in self.levels], dtype=torch.int64, device=device
        )
        self.cell_scale = torch.tensor(
            [level.scale for level in self.levels], dtype=torch.float32, device=device
        )


def _even(n: int) -> int:
    return n + (n & 1)


@contextlib.contextmanager
def _stage(timer: StageTimer | None, name: str) -> Iterator[None]:
    if timer is None:
        yield
    else:
        with timer.stage(name):
            yield


def _on_device(images: np.ndarray, device: torch.device) -> Tensor:
    """``[N, H, W, 3]`` float32 images as ``[N, 3, H, W]`` on ``device``, channels-last in memory."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2)


def _rerec(boxes: Tensor) -> Tensor:
    """Square boxes around their centres (facenet-pytorch ``rerec``, same float operations)."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _bbreg(boxes: Tensor, reg: Tensor) -> Tensor:
    """Apply R-/O-Net box regression (offsets in units of the inclusive box size)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    return torch.stack(
        [
            boxes[:, 0] + reg[:, 0] * w,
            boxes[:, 1] + reg[:, 1] * h,
            boxes[:, 2] + reg[:, 2] * w,
            boxes[:, 3] + reg[:, 3] * h,
        ],
        dim=1,
    )


def nms_min(
    boxes: Tensor, scores: Tensor, frame: Tensor | None, threshold: float, *, pixel_inclusive: bool = True
) -> Tensor:
    """Greedy NMS per frame with overlap = intersection / smaller area (the paper's last step; torchvision
    has only IoU): indices of the kept boxes, best score first. Greedy keeps a box unless a kept, better
    box suppresses it: with boxes in score order that is a fixed point, reached by whole-matrix steps (as
    many as the longest suppression chain). ``frame`` None: all boxes are of one frame. ``pixel_inclusive``:
    MTCNN's convention that a box [x0, x1] spans x1 - x0 + 1 pixels (off for the tiles' merge)."""
    if len(scores) == 0:
        return torch.empty(0, dtype=torch.int64, device=scores.device)
    order = torch.argsort(scores, descending=True, stable=True)
    boxes = boxes[order]
    one = 1 if pixel_inclusive else 0
    sides = boxes[:, 2:] - boxes[:, :2] + one
    area = sides.prod(dim=1) if pixel_inclusive else sides.clamp(min=0).prod(dim=1)
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt + one).clamp(min=0).prod(dim=2)
    smaller = torch.minimum(area[:, None], area[None, :])
    overlap = inter / (smaller if pixel_inclusive else smaller.clamp(min=1e-6))  # a tile's box may be empty
    # [i, j]: i ranks above j. (Not ``triu``: this torch's CPU kernel enters its thread pool on every call,
    # 30 µs with OMP_WAIT_POLICY=PASSIVE against 7 µs for this, and 0.3 ms to milliseconds without it.)
    rank = torch.arange(len(scores), device=scores.device)
    earlier = rank[:, None] < rank[None, :]
    suppresses = (overlap > threshold) & earlier
    if frame is not None:
        frame = frame[order]
        suppresses &= frame[:, None] == frame[None, :]
    keep = torch.ones(len(scores), dtype=torch.bool, device=scores.device)
    while True:
        again = ~(suppresses & keep[:, None]).any(dim=0)
        if torch.equal(again, keep):
            return order[keep]
        keep = again


def _cells_at_least(face: Tensor, cell_level: Tensor, threshold: float) -> Tensor:
    """``[K, 3]`` (frame, row, column) of the cells inside a level whose face probability is at least
    ``threshold``. On the CPU in numpy: torch splits these whole-map operations over its threads, and
    on a busy machine waiting for the second thread cost 10-30 ms a frame (measured on 2 vCPUs at
    load 4: 27 ms with 2 threads, 0.45 ms in numpy, for a 640×480 frame's cells)."""
    if face.device.type != "cpu":
        return ((face >= threshold) & (cell_level >= 0)).nonzero()
    hits = (face.numpy() >= threshold) & (cell_level.numpy() >= 0)
    return torch.from_numpy(np.argwhere(hits))


class _PNetInBands:
    """A P-Net session over a canvas in horizontal bands of about ``_PNET_BAND_PIXELS``, with the outputs
    of one call over the whole canvas (each cell from its own 12×12 window; bands overlap by the 10 rows two
    neighbouring cells share and start on even rows, so max-pooling windows line up).


    Why: torch runs each layer over the whole input before the next, so conv, PReLU, mask and pool
    each stream P-Net's 10-channel first-layer maps through memory; a 1280×720 frame's canvas makes
    them 33 MB, beyond this CPU's caches, and P-Net then cost 2-3× OpenVINO's time (which fuses
    layers and tiles by itself, and runs slower in bands). In bands the maps stay in cache: measured
    1.5-2.3× faster on 640×480 to 1920×1080 canvases, same outputs within 1e-6."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def run(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        images, mask = inputs
        height, width = images.shape[2], images.shape[3]
        cells = max(1, (_PNET_BAND_PIXELS // width - _PNET_CELL) // _PNET_STRIDE + 1)
        rows = (cells - 1) * _PNET_STRIDE + _PNET_CELL  # even: the next band starts on an even row
        run = self.session.run
        if rows >= height:
            return run(images, mask)
        parts: list[tuple[Tensor, ...]] = []
        top = 0
        while top + rows < height:
            outputs = run(images[:, :, top : top + rows], mask[:, :, top : top + rows - 2])
            parts.append(tuple(out[:, :, :cells] for out in outputs))
            top += cells * _PNET_STRIDE
        parts.append(tuple(run(images[:, :, top:], mask[:, :, top:])))
        return tuple(torch.cat(maps, dim=2) for maps in zip(*parts, strict=True))


def _crop_bounds(boxes: Tensor, frame_w: Tensor, frame_h: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """facenet-pytorch ``pad``: truncate to ints, clip to the frame; returns 0-based [x0, x1) × [y0, y1)."""
    b = boxes.to(torch.int64)  # truncates toward zero, as trunc() does
    x0 = b[:, 0].clamp(min=1) - 1
    y0 = b[:, 1].clamp(min=1) - 1
    x1 = torch.minimum(b[:, 2], frame_w)
    y1 = torch.minimum(b[:, 3], frame_h)
    return x0, y0, x1, y1


# The three networks as an engine converts them: batch (and P-Net's canvas) axes dynamic; every image
# input channels-last in memory (``NetSpec.channels_last``).
_SPATIAL = {0: "batch", 2: "height", 3: "width"}
NET_SPECS = {
    "pnet": NetSpec(
        "mtcnn_pnet",
        "mtcnn_pnet",
        (torch.zeros(1, 3, 24, 24), torch.zeros(1, 1, 22, 22)),
        (_SPATIAL, {2: "height", 3: "width"}),
        ("reg", "prob"),
        channels_last=(0,),
    ),
    "rnet": NetSpec(
        "mtcnn_rnet", "mtcnn_rnet", (torch.zeros(1, 3, 24, 24),), ({0: "batch"},), ("reg", "prob"), (0,)
    ),
    "onet": NetSpec(
        "mtcnn_onet",
        "mtcnn_onet",
        (torch.zeros(1, 3, 48, 48),),
        ({0: "batch"},),
        ("reg", "points", "prob"),
        (0,),
    ),
}


class MTCNN(nn.Module):
    """The three-stage detector; build it once per process with ``from_store`` and call ``detect``.

    It holds the three modules (their weights) and the session that runs each (``sessions``: the modules
    themselves on torch, their conversions on another engine), chosen once when it is built."""

    def __init__(
        self, pnet: PNet, rnet: RNet, onet: ONet, device: torch.device | str, loader: EngineLoader
    ) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.device = torch.device(device)
        self.to(self.device).eval().requires_grad_(False)
        self.engine = loader.engine
        # The pyramid's and the crops' resampling on the networks' share of the cores (ml.resample): torch
        # sessions run on torch's own thread setting, whatever a torch loader's count says.
        self.resample_threads = ResampleThreads(
            loader.threads if loader.engine != "torch" else torch.get_num_threads()
        )
        # Pyramid canvases by frame size and scales (their mask and cell maps), oldest first.
        self._canvases: dict[tuple[int, int, tuple[float, ...]], _PyramidCanvas] = {}
        self.sessions: dict[str, Session] = {
            name: loader.session(module, NET_SPECS[name])
            for name, module in (("pnet", pnet), ("rnet", rnet), ("onet", onet))
        }
        if loader.engine == "torch" and self.device.type == "cpu":
            self.sessions["pnet"] = _PNetInBands(self.sessions["pnet"])

    @classmethod
    def from_store(
        cls, store: ModelStore, device: torch.device | str, loader: EngineLoader | None = None
    ) -> MTCNN:
        """The detector with facenet-pytorch's weights from the verified model store, its networks run by
        ``loader``'s engine (torch when None)."""
        nets = (PNet(), RNet(), ONet())
        for net, name in zip(nets, ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"), strict=True):
            path = store.path(name)
            try:
                net.load_state_dict(load_state_dict(path), strict=True)
            except RuntimeError as exc:  # wrong keys or shapes: a different file than the registry's
                raise errors.WeightsCorrupt(
                    f"{path} does not fit MTCNN's {type(net).__name__}: {str(exc).splitlines()[0]}"
                ) from exc
        compile_kernels()
        return cls(*nets, device, loader or torch_loader(store))

    def detect(
        self, frames_bgr: Sequence[np.ndarray], params: MTCNNParams, timer: StageTimer | None = None
    ) -> list[Detections]:
        """Faces in each BGR uint8 ``HxWx3`` frame (as cv2 decodes them); one ``Detections`` per frame.

        ``timer`` (optional) receives the stages ``pyramid``, ``pnet``, ``rnet`` and ``onet``."""
        for i, frame in enumerate(frames_bgr):
            if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3):
                raise errors.InvalidInput(f"frame {i} is not a uint8 HxWx3 array")
            if frame.shape[2] != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
                raise errors.InvalidInput(f"frame {i} has shape {frame.shape}, expected HxWx3")
        if not frames_bgr:
            return []
        with torch.inference_mode():
            with _stage(timer, "pyramid"):
                frames = _Frames(frames_bgr, self.device, self.resample_threads)
            candidates = self._propose(frames, params, timer)
            with _stage(timer, "rnet"):
                candidates = self._refine(candidates, frames, params)
            with _stage(timer, "onet"):
                candidates, landmarks = self._output(candidates, frames, params)
                return self._per_frame(candidates, landmarks, len(frames_bgr))

    # --- stage 1: P-Net over the pyramid ---
    def _propose(self, frames: _Frames, params: MTCNNParams, timer: StageTimer | None) -> _Candidates:
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, size in enumerate(frames.sizes):
            by_size.setdefault(size, []).append(i)
        found: list[_Candidates] = []
        regs: list[Tensor] = []
        levels: list[Tensor] = []  # each candidate's level, numbered across frame sizes
        level_count = 0
        for (h, w), indices in by_size.items():
            scales = params.scales(h, w)
            if not scales:
                continue
            with _stage(timer, "pyramid"):
                canvas = self._canvas(h, w, scales)
            chunks: list[_Candidates] = []
            chunk_regs: list[Tensor] = []
            chunk_levels: list[Tensor] = []
            per_call = max(1, _PNET_PIXELS // (canvas.height * canvas.width))
            for start in range(0, len(indices), per_call):
                chunk = indices[start : start + per_call]
                with _stage(timer, "pyramid"):
                    images = canvas.images(frames, chunk)
                with _stage(timer, "pnet"):
                    reg, prob = self.sessions["pnet"].run(images, canvas.mask)
                    cands, cell_reg, level = self._cells_to_boxes(
                        reg.to(self.device), prob.to(self.device), canvas, params.thresholds[0]
                    )
                    cands.frame = torch.tensor(chunk, dtype=torch.int64, device=self.device)[cands.frame]
                    chunks.append(cands)
                    chunk_regs.append(cell_reg)
                    chunk_levels.append(level)
                del images, reg, prob
            # Level by level, then frame by frame, however the frames were chunked: the order one P-Net
            # call per level and frame would give.
            level = torch.cat(chunk_levels)
            order = torch.argsort(level, stable=True)
            found.append(_Candidates.cat(chunks)[order])
            regs.append(torch.cat(chunk_regs)[order])
            levels.append(level[order] + level_count)
            level_count += len(canvas.levels)
        with _stage(timer, "pnet"):
            if not found:
                return self._no_candidates()
            cands = _Candidates.cat(found)
            reg = torch.cat(regs)
            # NMS within each level of each frame (facenet-pytorch's per-scale step), all levels at once;
            # kept boxes ordered by level, then score, as one call per level would return them.
            level_of = torch.cat(levels)
            keep = batched_nms(
                cands.boxes, cands.scores, level_of * len(frames) + cands.frame, _PNET_NMS_PER_SCALE
            )
            keep = keep[torch.argsort(level_of[keep], stable=True)]
            cands, reg = cands[keep], reg[keep]
            keep = batched_nms(cands.boxes, cands.scores, cands.frame, _NMS)
            cands, reg = cands[keep], reg[keep]
            # P-Net's regression is in units of the exclusive box size (unlike R-/O-Net's, see _bbreg).
            extent = (cands.boxes[:, 2:] - cands.boxes[:, :2]).repeat(1, 2)
            cands.boxes = _rerec(cands.boxes + reg * extent)
            return cands

    @staticmethod
    def _cells_to_boxes(
        reg: Tensor, prob: Tensor, canvas: _PyramidCanvas, threshold: float
    ) -> tuple[_Candidates, Tensor, Tensor]:
        """Boxes (in frame pixels) of the P-Net cells of every level whose face probability passes the
        threshold, with their regression and level; in (level, frame, row, column) order."""
        face = prob[:, 1]
        where = _cells_at_least(face, canvas.cell_level, threshold)  # frame, row, column
        level = canvas.cell_level[where[:, 1], where[:, 2]]
        order = torch.argsort(level, stable=True)
        where, level = where[order], level[order]
        frame, row, col = where.unbind(1)
        scores = face[frame, row, col]
        cell_reg = reg.permute(0, 2, 3, 1)[frame, row, col]
        xy = (where[:, 1:] - canvas.cell_origin[level]).to(reg.dtype).flip(1)
        scale = canvas.cell_scale[level][:, None]
        top_left = ((_PNET_STRIDE * xy + 1) / scale).floor()
        bottom_right = ((_PNET_STRIDE * xy + _PNET_CELL) / scale).floor()
        boxes = torch.cat([top_left, bottom_right], dim=1)
        return _Candidates(boxes, scores, frame), cell_reg, level

    def _canvas(self, height: int, width: int, scales: Sequence[float]) -> _PyramidCanvas:
        """The canvas of a frame size, made once and kept (a few, most recently made)."""
        key = (height, width, tuple(scales))
        canvas = self._canvases.get(key)
        if canvas is None:
            if len(self._canvases) >= _CANVASES_KEPT:
                del self._canvases[next(iter(self._canvases))]
            canvas = self._canvases[key] = _PyramidCanvas(height, width, scales, self.device)
        return canvas

    # --- stage 2: R-Net over every candidate of every frame ---
    def _refine(self, cands: _Candidates, frames: _Frames, params: MTCNNParams) -> _Candidates:
        cands, outputs = self._run_on_crops(self.sessions["rnet"], cands, frames, _RNET_SIZE)
        if len(cands) == 0:
            return cands
        reg, prob = outputs
        score = prob[:, 1]
        passed = score > params.thresholds[1]
        cands = _Candidates(cands.boxes[passed], score[passed], cands.frame[passed])
        reg = reg[passed]
        keep = batched_nms(cands.boxes, cands.scores, cands.frame, _NMS)
        cands, reg = cands[keep], reg[keep]
        cands.boxes = _rerec(_bbreg(cands.boxes, reg))
        return cands

    # --- stage 3: O-Net, landmarks, final NMS ---
    def _output(self, cands: _Candidates, frames: _Frames, params: MTCNNParams) -> tuple[_Candidates, Tensor]:
        cands, outputs = self._run_on_crops(self.sessions["onet"], cands, frames, _ONET_SIZE)
        if len(cands) == 0:
            return cands, torch.zeros(0, 5, 2, device=self.device)
        reg, points, prob = outputs
        score = prob[:, 1]
        passed = score > params.thresholds[2]
        boxes, points, reg = cands.boxes[passed], points[passed], reg[passed]
        # Landmarks are relative to the box O-Net saw, before its own regression moves the box.
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = w * points[:, :5] + boxes[:, 0:1] - 1
        ys = h * points[:, 5:] + boxes[:, 1:2] - 1
        cands = _Candidates(_bbreg(boxes, reg), score[passed], cands.frame[passed])
        keep = nms_min(cands.boxes, cands.scores, cands.frame, _NMS)
        return cands[keep], torch.stack([xs, ys], dim=2)[keep]

    def _run_on_crops(
        self, net: Session, cands: _Candidates, frames: _Frames, size: int
    ) -> tuple[_Candidates, tuple[Tensor, ...]]:
        """``net`` over the candidates' ``size``×``size`` crops, in chunks; boxes wholly outside their
        frame are dropped (facenet-pytorch skips them too, but then misaligns its outputs)."""
        x0, y0, x1, y1 = _crop_bounds(cands.boxes, frames.width[cands.frame], frames.height[cands.frame])
        inside = (x1 > x0) & (y1 > y0)
        cands = cands[inside]
        x0, y0, x1, y1 = x0[inside], y0[inside], x1[inside], y1[inside]
        outputs = []
        for s in range(0, len(cands), _CHUNK):
            part = slice(s, s + _CHUNK)
            crops = frames.crops(cands.frame[part], x0[part], y0[part], x1[part], y1[part], size)
            outputs.append(tuple(out.to(self.device) for out in net.run(crops)))
        return cands, tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))

    def _no_candidates(self) -> _Candidates:
        return _Candidates(
            torch.zeros(0, 4, device=self.device),
            torch.zeros(0, device=self.device),
            torch.zeros(0, dtype=torch.int64, device=self.device),
        )

    @staticmethod
    def _per_frame(cands: _Candidates, landmarks: Tensor, n_frames: int) -> list[Detections]:
        """Split by frame, most probable first, as float32 numpy (one device-to-host copy)."""
        order = torch.argsort(cands.scores, descending=True, stable=True)
        order = order[torch.argsort(cands.frame[order], stable=True)]
        boxes = cands.boxes[order].cpu().numpy().astype(np.float32)
        probs = cands.scores[order].cpu().numpy().astype(np.float32)
        points = landmarks[order].cpu().numpy().astype(np.float32)
        counts = torch.bincount(cands.frame, minlength=n_frames).cpu().tolist()
        bounds = np.cumsum([0, *counts])
        return [
            Detections(boxes[a:b].reshape(-1, 4), probs[a:b].reshape(-1), points[a:b].reshape(-1, 5, 2))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
