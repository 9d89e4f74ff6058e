"""Area resampling of frames into MTCNN's inputs, compiled with numba: the pyramid levels and the R-/O-Net
crops, straight from a frame's summed-area table into normalised float32.

facenet-pytorch resamples with ``interpolate(mode="area")``, i.e. ``adaptive_avg_pool2d``: each output pixel
is the mean of an integer rectangle of input pixels, rows ``[floor(i*n/s), ceil((i+1)*n/s))`` and the same
for columns. From a summed-area table (``cv2.integral``) a rectangle's sum is four look-ups, exact since
pixels are integers; dividing as PyTorch's CPU kernel does (float32, by the rows, then by the columns)
gives its results bit for bit while a bin sums below 2**24. The same arithmetic as torch tensor operations
cost 7-9 ms per 640×480 frame in gathers and temporaries, OpenCV's ``INTER_AREA`` (fractional pixel
weights, bilinear when enlarging) moved MTCNN's boxes beyond the oracle's IoU 0.95, and
``torchvision.ops.roi_align`` samples bilinearly: so these loops, compiled once per process (numba's
cache keeps the machine code beside this file when the folder is writable).

The loops release the GIL, so ``ResampleThreads`` splits a frame's pyramid levels and a stage's crops over
the threads the networks also get (the networks and the resampling never run at once): measured on the
2-core VM, the work around the networks of a 1920×1080 frame went from 20.9 to 15.8 ms (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numba
import numpy as np

# MTCNN's input scaling: (pixel - 127.5) / 128.
_MEAN = np.float32(127.5)
_SCALE = np.float32(0.0078125)


@numba.njit(cache=True, nogil=True)
def _resample_into(
    tables: np.ndarray,
    start: int,
    row_len: int,
    top: int,
    left: int,
    bottom: int,
    right: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """``out[h, w, 3]`` = the rectangle ``[top:bottom, left:right]`` of the frame whose summed-area table
    (``[H+1, W+1, 3]``, ``row_len`` = (W+1)*3 values a row) lies in ``tables`` from ``start``,
    area-resampled to ``h``×``w`` and normalised."""
    height, width = out.shape[0], out.shape[1]
    rows, cols = bottom - top, right - left
    # Column bins once (integer division is slow): offsets of their first and last table columns.
    c0 = np.empty(width, dtype=np.int64)
    c1 = np.empty(width, dtype=np.int64)
    cols_in = np.empty(width, dtype=np.float32)
    for j in range(width):
        first = left + (j * cols) // width
        last = left + ((j + 1) * cols + width - 1) // width
        c0[j], c1[j], cols_in[j] = first * 3, last * 3, np.float32(last - first)
    for i in range(height):
        first = top + (i * rows) // height
        last = top + ((i + 1) * rows + height - 1) // height
        r0, r1 = start + first * row_len, start + last * row_len
        rows_in = np.float32(last - first)
        for j in range(width):
            a, b = c0[j], c1[j]
            for c in range(3):
                total = tables[r1 + b + c] - tables[r0 + b + c] - tables[r1 + a + c] + tables[r0 + a + c]
                out[i, j, c] = (np.float32(total) / rows_in / cols_in[j] - _MEAN) * _SCALE


@numba.njit(cache=True, nogil=True)
def _crops_into(
    tables: np.ndarray,
    starts: np.ndarray,
    row_lens: np.ndarray,
    frame: np.ndarray,
    boxes: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for k in range(len(frame)):
        f = frame[k]
        _resample_into(
            tables, starts[f], row_lens[f], boxes[k, 1], boxes[k, 0], boxes[k, 3], boxes[k, 2], out[k]
        )


# Crops below this many in one call stay on the calling thread: handing work over costs tens of microseconds.
_CROPS_TO_SPLIT = 16


class ResampleThreads:
    """``threads`` - 1 helper threads beside the caller's, for the resampling kernels (they release the GIL).

    One per detector (its share of the cores: the networks' thread count). The helpers are started in the
    process that first uses them, and again in a process forked after that, whose copies of them would not
    run."""

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._starting = threading.Lock()  # jobs on a threads pool may detect at once

    def run(self, parts: Sequence[Callable[[], None]]) -> None:
        """Run every part, the first on the calling thread and the others on the helpers; return when all
        are done (a part's exception is raised here)."""
        if len(parts) <= 1 or self.threads == 1:
            for part in parts:
                part()
            return
        with self._starting:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="rollcall-resample")
                self._pid = os.getpid()
            pool = self._pool
        futures = [pool.submit(part) for part in parts[1:]]
        try:
            parts[0]()
        finally:
            for future in futures:
                future.result()


def _balanced(sizes: Sequence[int], groups: int) -> list[list[int]]:
    """Indices of ``sizes`` in ``groups`` groups of about equal total, largest first (greedy)."""
    totals = [0] * groups
    members: list[list[int]] = [[] for _ in range(groups)]
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        least = totals.index(min(totals))
        members[least].append(index)
        totals[least] += sizes[index]
    return [group for group in members if group]


class SummedAreaTables:
    """The integral images (``cv2.integral``) of RGB uint8 frames, one flat array: int32 while every frame
    sums below 2**31, else float64 (exact to 2**53). ``threads`` (optional) share the resampling."""

    def __init__(self, frames_rgb: list[np.ndarray], threads: ResampleThreads | None = None) -> None:
        self.threads = threads or ResampleThreads(1)
        wide = max(f.shape[0] * f.shape[1] for f in frames_rgb) * 255 >= 2**31
        tables = [cv2.integral(f, sdepth=cv2.CV_64F if wide else cv2.CV_32S) for f in frames_rgb]
        self.flat = (
            np.concatenate([t.reshape(-1) for t in tables]) if len(tables) > 1 else tables[0].reshape(-1)
        )
        sizes = [t.size for t in tables]
        self.starts = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        self.row_lens = np.array([t.shape[1] * 3 for t in tables], dtype=np.int64)
        self._sizes = [(f.shape[0], f.shape[1]) for f in frames_rgb]

    def resample_into(
        self, frame: int, top: int, left: int, bottom: int, right: int, out: np.ndarray
    ) -> None:
        """Write ``[top:bottom, left:right]`` of frame ``frame``, area-resampled and normalised, into ``out``
        (``[h, w, 3]`` float32; may be a view into a larger canvas)."""
        _resample_into(self.flat, self.starts[frame], self.row_lens[frame], top, left, bottom, right, out)

    def resample_wholes_into(self, frames: Sequence[int], places: Sequence[np.ndarray]) -> None:
        """Write the whole of frame ``frames[k]``, area-resampled, into ``places[k]`` for every ``k`` (the
        pyramid levels), shared out over the threads by pixels."""

        def part(indices: list[int]) -> Callable[[], None]:
            def resample() -> None:
                for k in indices:
                    height, width = self._sizes[frames[k]]
                    self.resample_into(frames[k], 0, 0, height, width, places[k])

            return resample

        groups = _balanced([p.shape[0] * p.shape[1] for p in places], self.threads.threads)
        self.threads.run([part(group) for group in groups])

    def crops(self, frame: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
        """``[K, size, size, 3]`` normalised float32 crops: box ``k`` (``x0, y0, x1, y1``, int64, non-empty
        and inside its frame) of frame ``frame[k]``, area-resampled."""
        out = np.empty((len(frame), size, size, 3), dtype=np.float32)
        count = len(frame)
        parts = self.threads.threads if count >= _CROPS_TO_SPLIT else 1
        bounds = [count * p // parts for p in range(parts + 1)]

        def part(a: int, b: int) -> Callable[[], None]:
            return lambda: _crops_into(
                self.flat, self.starts, self.row_lens, frame[a:b], boxes[a:b], out[a:b]
            )

        if count:
            self.threads.run([part(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        return out


def compile_kernels() -> None:
    """Compile (or load from numba's cache) every variant the detector calls, so that loading a model
    pays for it and no request does: int32 and float64 tables, canvas views and whole crops."""
    pixel = np.zeros((2, 2, 3), dtype=np.uint8)
    for dtype in (np.int32, np.float64):
        tables = SummedAreaTables([pixel])
        tables.flat = tables.flat.astype(dtype)
        canvas = np.zeros((3, 3, 3), dtype=np.float32)
        tables.resample_into(0, 0, 0, 2, 2, canvas[:2, :2])
        tables.crops(np.zeros(1, dtype=np.int64), np.array([[0, 0, 2, 2]], dtype=np.int64), 2)
