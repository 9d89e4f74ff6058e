"""Small-face mode: tiles, merging, the auto rule, and recall on a synthetic classroom frame.

The classroom figures are printed (``-s`` shows them) and recorded in the README.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import cv2
import numpy as np
import pytest

from benchmarks.classroom import build_classroom, score_detections
from contract.jobs import SmallFaces
from facebank.records import GalleryRows
from ml.mtcnn import Detections, MTCNNParams
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from ml.tiling import Tile, merge_detections, tile_grid, wants_tiles
from recognition.gallery import Gallery, match_faces
from settings import get_settings
from tests.shared_data import shared_dir

# Rows of (faces, face width in px), back of the class to the front.
CLASSROOM_ROWS = ((6, 8.0), (6, 10.0), (6, 12.0), (6, 14.0), (6, 17.0), (6, 20.0))


@cache
def pipeline() -> FacePipeline:
    return load_pipeline(PipelineConfig(model_dir=get_settings().model_dir, device="cpu"))


def detections(boxes: list[list[float]], probs: list[float]) -> Detections:
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    centres = (b[:, :2] + b[:, 2:]) / 2
    return Detections(b, np.asarray(probs, dtype=np.float32), np.repeat(centres[:, None, :], 5, axis=1))


def test_tile_grid_covers_the_frame_with_overlap() -> None:
    tiles = tile_grid(1920, 1080, rows=3, cols=4, overlap=0.15)
    assert len(tiles) == 12
    covered = np.zeros((1080, 1920), dtype=bool)
    for tile in tiles:
        covered[tile.y0 : tile.y1, tile.x0 : tile.x1] = True
    assert covered.all()
    # Neighbours overlap by 2 × 15 % of a 480-px column.
    assert tiles[0].x1 - tiles[1].x0 == pytest.approx(2 * 0.15 * 480, abs=2)


def test_merge_keeps_one_box_per_face_and_prefers_the_central_copy() -> None:
    face = [100.0, 100.0, 120.0, 124.0]
    left_tile, right_tile = Tile(0, 0, 130, 200), Tile(90, 0, 400, 200)
    partial = [100.0, 100.0, 110.0, 124.0]  # the same face cut by a tile edge
    merged = merge_detections(
        [
            (detections([face], [0.95]), left_tile),
            (detections([[101.0, 100.0, 121.0, 124.0]], [0.95]), right_tile),
            (detections([partial], [0.8]), right_tile),
            (detections([[300.0, 50.0, 320.0, 74.0]], [0.99]), None),
        ]
    )
    assert len(merged) == 2
    assert merged.probs[0] == pytest.approx(0.99)
    # Of the two equal-probability copies, the one nearer its tile's centre wins.
    assert merged.boxes[1][0] == pytest.approx(100.0)


def test_auto_mode_tiles_only_large_frames_with_small_faces() -> None:
    small_faces = detections([[10, 10, 30, 34]], [0.99])
    big_face = detections([[100, 100, 500, 600]], [0.99])
    assert wants_tiles((1080, 1920, 3), small_faces)
    assert wants_tiles((1080, 1920, 3), detections([], []))
    assert not wants_tiles((1080, 1920, 3), big_face)
    assert not wants_tiles((480, 640, 3), small_faces)


@pytest.fixture(scope="module")
def classroom_results() -> dict[str, dict[str, object]]:
    room = build_classroom(shared_dir(), rows=CLASSROOM_ROWS)
    results: dict[str, dict[str, object]] = {}
    for mode in ("off", "on", "auto"):
        found = pipeline().detect_small_faces(room.frame, SmallFaces(mode=mode))
        results[mode] = {
            "tiled": found.tiled,
            "timings_ms": found.timings_ms,
            **{
                f"at_{p}": score_detections(room.boxes, found.detections.boxes, found.detections.probs, p)
                for p in (0.7, 0.9)
            },
        }
    print("\nsmall-face classroom (36 faces, 8-20 px):", json.dumps(results, indent=1))
    return results


def test_small_face_mode_finds_clearly_more_faces_without_more_false_boxes(
    classroom_results: dict[str, dict[str, dict[str, int]]],
) -> None:
    off, on = classroom_results["off"], classroom_results["on"]
    for threshold in ("at_0.7", "at_0.9"):
        assert on[threshold]["found"] >= off[threshold]["found"] + 4, (threshold, off, on)
        assert on[threshold]["false_boxes"] <= off[threshold]["false_boxes"], (threshold, off, on)


def test_auto_mode_turns_tiles_on_for_the_classroom(classroom_results: dict[str, dict[str, object]]) -> None:
    assert classroom_results["auto"]["tiled"] is True
    assert classroom_results["auto"]["at_0.9"] == classroom_results["on"]["at_0.9"]


def test_small_faces_are_named_right_or_left_unknown() -> None:
    """Tiny faces of enrolled people: count right, unknown and misnamed; misnaming must not happen."""
    pipe = pipeline()
    gallery, names = _facebank_gallery(pipe)
    people = {
        "alex_lacamoire1.jpg": "alex_lacamoire",
        "johnsnow_test1.jpg": "kit_harington",
        "obama1.jpg": "obama",
    }
    report: dict[int, dict[str, int]] = {}
    for width in (10, 14, 20, 28):
        counts = {"right": 0, "unknown": 0, "misnamed": 0, "missed": 0}
        for photo, person in people.items():
            image = cv2.imread(str(shared_dir() / "datasets/facebank_probe" / photo), cv2.IMREAD_COLOR)
            face = pipe.detect([image])[0]
            box = face.boxes[0]
            scale = width / float(box[2] - box[0])
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            canvas = np.full((1080, 1920, 3), 160, dtype=np.uint8)
            h, w = small.shape[:2]
            canvas[500 : 500 + h, 900 : 900 + w] = small[: 1080 - 500, : 1920 - 900]
            found = pipe.detect_small_faces(canvas, SmallFaces(mode="on")).detections
            if len(found) == 0:
                counts["missed"] += 1
                continue
            vector = pipe.embed(canvas, found.landmarks[:1])
            match = match_faces(vector, gallery, pipe.embedder.default_threshold)[0]
            if match.person_id is None:
                counts["unknown"] += 1
            else:
                counts["right" if names[match.person_id] == person else "misnamed"] += 1
        report[width] = counts
    print("\nsmall-face identification (3 enrolled people per width):", json.dumps(report))
    assert all(counts["misnamed"] == 0 for counts in report.values()), report
    assert report[28]["right"] >= 2, report


def _facebank_gallery(pipe: FacePipeline) -> tuple[Gallery, dict[int, str]]:
    vectors, person_ids, names = [], [], {}
    for pid, folder in enumerate(sorted((shared_dir() / "datasets/facebank").iterdir())):
        names[pid] = folder.name
        for photo in sorted(folder.iterdir()):
            image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
            found = pipe.detect([image])[0]
            vectors.append(pipe.embed(image, found.landmarks[:1])[0])
            person_ids.append(pid)
    rows = GalleryRows(
        np.asarray(person_ids, dtype=np.int64),
        np.arange(len(vectors), dtype=np.int64),
        np.stack(vectors).astype(np.float32),
    )
    emb = pipe.embedder
    return Gallery.from_rows(rows, emb.name, emb.version, revision=0, device="cpu"), names


def test_a_face_size_cap_keeps_the_pyramid_above_the_smallest_scale() -> None:
    """(Small-face options are validated where they are defined: tests/contract/test_small_faces.py.)"""
    assert MTCNNParams(min_face_size=20, max_face_size=80).scales(1000, 1000)[-1] >= 12 / 80


def test_on_a_downscaled_frame_the_tiles_find_the_small_faces_at_full_resolution() -> None:
    """A frame over the detection long side (here 960 px for a 1920 px classroom, so the whole-frame pass
    sees it at half size and misses faces under ~40 px) still has its small faces found by the tiles,
    which are cut from the full-resolution frame; every box is in the frame's own coordinates."""
    room = build_classroom(shared_dir(), rows=((6, 14.0), (6, 20.0), (6, 28.0), (6, 40.0), (6, 56.0)))
    bounded_config = dataclasses.replace(
        pipeline().config, mtcnn=MTCNNParams(), min_face_prob=0.0, max_detect_side=960
    )
    bounded = FacePipeline(pipeline().detector, pipeline().embedder, bounded_config, pipeline().device, 0.0)
    off = bounded.detect_small_faces(room.frame, SmallFaces(mode="off")).detections
    on = bounded.detect_small_faces(room.frame, SmallFaces(mode="on")).detections
    scored_off = score_detections(room.boxes, off.boxes, off.probs, 0.9)
    scored_on = score_detections(room.boxes, on.boxes, on.probs, 0.9)
    print(f"\ndownscaled 1920x1080 classroom (30 faces, 14-56 px): off {scored_off}, on {scored_on}")
    assert scored_off["found"] <= 24  # the half-size pass misses most of the 14-20 px rows (21 found)
    assert scored_on["found"] >= 28 and scored_on["found"] >= scored_off["found"] + 5  # 30 found
    assert scored_on["false_boxes"] <= scored_off["false_boxes"] + 1
