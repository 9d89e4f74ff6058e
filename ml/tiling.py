"""Small faces in wide shots: detection on the whole frame plus enlarged, overlapping tiles.

MTCNN's P-Net looks at 12-pixel cells, so a face much under ~12–15 px is invisible to it at
any pyramid scale. The seed's attendance server therefore cut each frame into 3 × 4
overlapping tiles, enlarged each ×2 and detected on the frame and every tile. rollcall does
the same, but runs all tiles of a frame as one batch, maps boxes and landmarks back to frame
coordinates, and merges duplicates across tiles with a greedy "intersection over the smaller
box" suppression that keeps the better-scored, more central box (a face cut by a tile edge
yields a partial box inside the full one; plain IoU would keep both).

``auto`` mode turns the tiles on when the frame is large (≥ ``AUTO_MIN_PIXELS``) and the
whole-frame pass found no face or its median face is small (height under
``AUTO_SMALL_FACE_FRACTION`` of the frame height): that is what a wide classroom shot looks
like, while a close-up webcam frame never pays for tiles.

What a job asks for (mode, grid, overlap, enlargement, face size) is defined once, with its defaults
and bounds, by the job contract (``contract.jobs.SmallFaces``); this module reads it through the
``TilingParams`` protocol and imports nothing from the contract, which sits above ``ml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np
import torch

from ml.bounded import at_least, detect_bounded, detection_scale
from ml.mtcnn import MTCNN, Detections, MTCNNParams, nms_min

TilingMode = Literal["off", "auto", "on"]
# How much a box's distance from its tile's centre (in tile half-diagonals) lowers its merge score:
# enough to prefer the central copy of a face seen by two tiles, too little to beat a clearly better box.
_CENTRALITY_WEIGHT = 0.02
_DUPLICATE_OVERLAP = 0.5
# The auto rule: frames from this size whose whole-frame faces are under this share of their height.
AUTO_MIN_PIXELS = 1280 * 720
AUTO_SMALL_FACE_FRACTION = 0.1
# Enlarged tiles are where false positives come from: a face found only in a tile must be this sure.
TILE_MIN_PROB = 0.9


class TilingParams(Protocol):
    """Small-face mode: ``off`` / ``auto`` / ``on``, the tile grid, overlap, enlargement and face size
    (``min_face_size`` in enlarged-tile pixels: 20 px at ×2 finds faces of 10 px in the frame)."""

    @property
    def mode(self) -> TilingMode: ...
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def overlap(self) -> float: ...
    @property
    def scale(self) -> float: ...
    @property
    def min_face_size(self) -> int: ...


@dataclass(frozen=True, eq=False)
class SmallFaceDetections:
    """Detections in frame coordinates, which mode actually ran, and how long each part took."""

    detections: Detections
    mode: TilingMode
    tiled: bool
    tiles: int
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class Tile:
    x0: int
    y0: int
    x1: int
    y1: int


def tile_grid(width: int, height: int, rows: int, cols: int, overlap: float) -> list[Tile]:
    """``rows × cols`` tiles covering the frame, each extended by ``overlap`` of its size on every side."""
    tiles = []
    tile_w, tile_h = width / cols, height / rows
    pad_x, pad_y = tile_w * overlap, tile_h * overlap
    for r in range(rows):
        for c in range(cols):
            tiles.append(
                Tile(
                    x0=max(0, int(round(c * tile_w - pad_x))),
                    y0=max(0, int(round(r * tile_h - pad_y))),
                    x1=min(width, int(round((c + 1) * tile_w + pad_x))),
                    y1=min(height, int(round((r + 1) * tile_h + pad_y))),
                )
            )
    return tiles


def wants_tiles(frame_shape: tuple[int, ...], whole: Detections) -> bool:
    """The ``auto`` rule (see the module docstring)."""
    height, width = frame_shape[:2]
    if width * height < AUTO_MIN_PIXELS:
        return False
    if len(whole) == 0:
        return True
    face_heights = whole.boxes[:, 3] - whole.boxes[:, 1]
    return bool(np.median(face_heights) < AUTO_SMALL_FACE_FRACTION * height)


def detect_small_faces(
    detector: MTCNN,
    frame_bgr: np.ndarray,
    detect_params: MTCNNParams,
    params: TilingParams,
    max_side: int | None = None,
    min_prob: float = 0.0,
) -> SmallFaceDetections:
    """Faces in one frame, with tiles when the mode asks for them.

    The whole-frame pass sees the frame downscaled to ``max_side`` (``ml.bounded``); the tiles are cut from
    the full-resolution frame and cover faces up to twice the smallest face that pass can find. Faces below
    ``min_prob`` are left out of the answer.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    whole = at_least(detect_bounded(detector, [frame_bgr], detect_params, max_side)[0], min_prob)
    timings["whole_frame"] = _ms_since(started)
    tiled = params.mode == "on" or (params.mode == "auto" and wants_tiles(frame_bgr.shape, whole))
    if not tiled:
        return SmallFaceDetections(whole, params.mode, False, 0, timings)

    started = time.perf_counter()
    height, width = frame_bgr.shape[:2]
    tiles = tile_grid(width, height, params.rows, params.cols, params.overlap)
    batches = _tiles_by_size(frame_bgr, tiles, params.scale)
    # Faces of up to twice the whole-frame minimum (in the frame, so larger when that pass was downscaled)
    # are what the tiles are for.
    largest = int(2 * detect_params.min_face_size * params.scale / detection_scale(frame_bgr.shape, max_side))
    tile_params = MTCNNParams(
        min_face_size=params.min_face_size,
        thresholds=detect_params.thresholds,
        factor=detect_params.factor,
        max_face_size=max(largest, params.min_face_size),
    )
    found: list[tuple[Detections, Tile | None]] = [(whole, None)]
    for members, images in batches:
        for tile, detections in zip(members, detector.detect(images, tile_params), strict=True):
            sure = at_least(detections, max(TILE_MIN_PROB, min_prob))
            found.append((_to_frame(sure, tile, params.scale), tile))
    timings["tiles"] = _ms_since(started)

    started = time.perf_counter()
    merged = merge_detections(found)
    timings["merge"] = _ms_since(started)
    return SmallFaceDetections(merged, params.mode, True, len(tiles), timings)


def _tiles_by_size(
    frame: np.ndarray, tiles: list[Tile], scale: float
) -> list[tuple[list[Tile], list[np.ndarray]]]:
    """Enlarged tile images grouped by size, so each group is one batched detector call."""
    groups: dict[tuple[int, int], tuple[list[Tile], list[np.ndarray]]] = {}
    for tile in tiles:
        crop = frame[tile.y0 : tile.y1, tile.x0 : tile.x1]
        size = (int(round(crop.shape[1] * scale)), int(round(crop.shape[0] * scale)))
        enlarged = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)
        members, images = groups.setdefault(size, ([], []))
        members.append(tile)
        images.append(enlarged)
    return list(groups.values())


def _to_frame(detections: Detections, tile: Tile, scale: float) -> Detections:
    offset = np.array([tile.x0, tile.y0], dtype=np.float32)
    boxes = detections.boxes / scale + np.tile(offset, 2)
    landmarks = detections.landmarks / scale + offset
    return Detections(boxes.astype(np.float32), detections.probs, landmarks.astype(np.float32))


def merge_detections(found: list[tuple[Detections, Tile | None]]) -> Detections:
    """Greedy suppression over all boxes by intersection over the smaller box; central boxes win ties."""
    boxes = np.concatenate([d.boxes for d, _ in found]).reshape(-1, 4)
    probs = np.concatenate([d.probs for d, _ in found]).reshape(-1)
    landmarks = np.concatenate([d.landmarks for d, _ in found]).reshape(-1, 5, 2)
    if len(probs) == 0:
        return Detections(boxes.astype(np.float32), probs.astype(np.float32), landmarks.astype(np.float32))
    penalty = np.concatenate([_off_centre(d.boxes, tile) for d, tile in found])
    rank = torch.from_numpy((probs - _CENTRALITY_WEIGHT * penalty).astype(np.float64))
    keep = nms_min(
        torch.from_numpy(boxes.astype(np.float32)), rank, None, _DUPLICATE_OVERLAP, pixel_inclusive=False
    )
    kept = np.array(sorted(keep.tolist(), key=lambda k: -probs[k]), dtype=np.int64)
    return Detections(
        boxes[kept].astype(np.float32), probs[kept].astype(np.float32), landmarks[kept].astype(np.float32)
    )


def _off_centre(boxes: np.ndarray, tile: Tile | None) -> np.ndarray:
    """Distance of each box centre from its tile's centre, in tile half-diagonals (0 for the whole frame)."""
    if tile is None or len(boxes) == 0:
        return np.zeros(len(boxes), dtype=np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    tile_centre = np.array([(tile.x0 + tile.x1) / 2, (tile.y0 + tile.y1) / 2], dtype=np.float32)
    half_diagonal = np.hypot(tile.x1 - tile.x0, tile.y1 - tile.y0) / 2
    distances: np.ndarray = np.linalg.norm(centres - tile_centre, axis=1) / max(half_diagonal, 1.0)
    return distances.astype(np.float32)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
