"""The compiled area resampling gives what facenet-pytorch's ``interpolate(mode="area")`` gives, bit for bit:
shrinking (pyramid levels), enlarging (crops of faces smaller than R-/O-Net's input) and odd rectangles,
from int32 and float64 integral images; and torch's P-Net in bands gives P-Net's outputs over the whole
canvas; shared over two threads, the same floats."""

from __future__ import annotations

import os
import select
import signal

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import ml.mtcnn as mtcnn_module
from ml.mtcnn import MTCNNParams, PNet
from ml.resample import ResampleThreads, SummedAreaTables


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


def test_two_threads_resample_exactly_what_one_does(frames: list[np.ndarray]) -> None:
    """The pyramid levels of both frames and a stage's crops shared over a helper thread: the same floats,
    every place written once."""
    one, two = SummedAreaTables(frames), SummedAreaTables(frames, ResampleThreads(2))
    sizes = [(int(f.shape[0] * s + 1), int(f.shape[1] * s + 1)) for f in frames for s in (0.6, 0.4254, 0.3)]
    owners = [i for i in range(len(frames)) for _ in range(3)]
    serial = [np.full((*size, 3), np.nan, dtype=np.float32) for size in sizes]
    shared = [np.full((*size, 3), np.nan, dtype=np.float32) for size in sizes]
    one.resample_wholes_into(owners, serial)
    two.resample_wholes_into(owners, shared)
    for a, b in zip(serial, shared, strict=True):
        assert not np.isnan(b).any()
        np.testing.assert_array_equal(a, b)
    generator = np.random.default_rng(7)
    x0, y0 = generator.integers(0, 60, 40), generator.integers(0, 40, 40)
    boxes = np.stack([x0, y0, x0 + generator.integers(1, 70, 40), y0 + generator.integers(1, 55, 40)], axis=1)
    frame = np.zeros(len(boxes), dtype=np.int64)
    np.testing.assert_array_equal(one.crops(frame, boxes, 24), two.crops(frame, boxes, 24))


def test_a_forked_process_gets_helper_threads_of_its_own(frames: list[np.ndarray]) -> None:
    """A detector built before a fork (its helpers started) still resamples in the child, whose copy of
    the helper threads does not run."""
    threads = ResampleThreads(2)
    sums = SummedAreaTables(frames[:1], threads)
    boxes = np.array([[0, 0, 50, 50]] * 20, dtype=np.int64)
    expected = sums.crops(np.zeros(20, dtype=np.int64), boxes, 24)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        ok = np.array_equal(sums.crops(np.zeros(20, dtype=np.int64), boxes, 24), expected)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        ready, _, _ = select.select([answer], [], [], 20)
        if not ready:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        assert ready, "the child hung: its helper threads were never started"
        assert answer.read() == b"1"
