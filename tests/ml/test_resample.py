"""The compiled area resampling gives what facenet-pytorch's ``interpolate(mode="area")`` gives, bit for bit:
shrinking (pyramid levels), enlarging (crops of faces smaller than R-/O-Net's input) and odd rectangles,
from int32 and float64 integral images; and torch's P-Net in bands gives P-Net's outputs over the whole
canvas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import ml.mtcnn as mtcnn_module
from ml.mtcnn import MTCNNParams, PNet
from ml.resample import SummedAreaTables


def _area(
    rgb: np.ndarray, top: int, left: int, bottom: int, right: int, height: int, width: int
) -> np.ndarray:
    """facenet-pytorch's resampling of the rectangle, normalised as MTCNN's input: [h, w, 3] float32."""
    pixels = torch.from_numpy(rgb[top:bottom, left:right]).permute(2, 0, 1)[None].float()
    out = F.interpolate(pixels, size=(height, width), mode="area")[0].permute(1, 2, 0)
    return ((out - 127.5) * 0.0078125).numpy()


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    generator = np.random.default_rng(24)
    return [generator.integers(0, 256, size, dtype=np.uint8) for size in ((97, 131, 3), (480, 640, 3))]


@pytest.mark.parametrize("wide", [False, True], ids=["int32", "float64"])
def test_pyramid_levels_and_crops_equal_interpolate_area(frames: list[np.ndarray], wide: bool) -> None:
    sums = SummedAreaTables(frames)
    if wide:  # what frames summing past 2**31 get
        sums.flat = sums.flat.astype(np.float64)
    for index, rgb in enumerate(frames):
        h, w = rgb.shape[:2]
        for scale in (0.6, 0.4254, 0.0912):
            size = (int(h * scale + 1), int(w * scale + 1))
            canvas = np.zeros((size[0] + 3, size[1] + 5, 3), dtype=np.float32)
            place = canvas[1 : 1 + size[0], 2 : 2 + size[1]]  # a view into a larger canvas
            sums.resample_into(index, 0, 0, h, w, place)
            np.testing.assert_array_equal(place, _area(rgb, 0, 0, h, w, *size))
            assert not canvas[0].any() and not canvas[:, :2].any(), "nothing written outside the level"
    boxes = np.array([[3, 5, 60, 70], [10, 20, 17, 31], [0, 0, 131, 97], [50, 40, 51, 41]], dtype=np.int64)
    frame = np.zeros(len(boxes), dtype=np.int64)
    for size in (24, 48):
        crops = sums.crops(frame, boxes, size)
        for crop, (x0, y0, x1, y1) in zip(crops, boxes, strict=True):
            np.testing.assert_array_equal(crop, _area(frames[0], y0, x0, y1, x1, size, size))


def test_pnet_in_bands_gives_the_outputs_of_one_call_over_the_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1280×720 frame's canvas cut into bands of a few rows each: the cells inside the levels equal
    those of one call (within float32 rounding of the convolutions)."""
    torch.manual_seed(24)
    pnet = PNet().eval()
    canvas = mtcnn_module._PyramidCanvas(720, 1280, MTCNNParams().scales(720, 1280), torch.device("cpu"))
    images = torch.randn(1, canvas.height, canvas.width, 3).permute(0, 3, 1, 2)
    monkeypatch.setattr(mtcnn_module, "_PNET_BAND_PIXELS", 40 * canvas.width)
    calls: list[int] = []

    class Counted:
        def run(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            calls.append(x.shape[2])
            return pnet(x, mask)

    with torch.inference_mode():
        whole = pnet(images, canvas.mask)
        banded = mtcnn_module._PNetInBands(Counted()).run(images, canvas.mask)
    assert len(calls) > 10 and max(calls) <= 40
    inside = canvas.cell_level >= 0
    for one, bands in zip(whole, banded, strict=True):
        assert one.shape == bands.shape
        torch.testing.assert_close(bands[0][:, inside], one[0][:, inside], rtol=0, atol=1e-5)
