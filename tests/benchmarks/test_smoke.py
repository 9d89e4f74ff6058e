"""The benchmarks run: ``python -m benchmarks --tiny --json`` ends with the result object, and the
seed's way reproduced in ``benchmarks/seed_way.py`` names the same people as rollcall (so the speedup
compares two correct answers). No timing is asserted: this machine's speed is not the product's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.shared_data import REPO_ROOT, shared_dir


@pytest.mark.slow
def test_tiny_benchmark_prints_the_headline_figures_as_its_last_line(tmp_path: Path) -> None:
    shared_dir()  # a missing shared folder fails here, with how to fix it
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--json", "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["speedup_vs_seed_640x480"] > 0
    # The headline figures --tiny measures, each with the engine that ran rollcall.
    for key in (
        "speedup_vs_seed_640x480",
        "speedup_vs_seed_640x480_equal_work",
        "speedup_vs_seed_640x480_same_embedder",
        "speedup_vs_seed_640x480_equal_work_same_embedder",
        "detect_vs_facenet_pytorch_640x480",
        "classroom_1080p_attendance_ms",
        "torch_over_openvino_detect_1280x720",
    ):
        assert result[key] > 0, key
        assert result[f"{key}_engine"], key
    # The networks' share of detection: a fraction, measured inside the same calls.
    for key in ("detect_network_share_640x480", "detect_network_share_1920x1080"):
        assert 0 < result[key] < 1, key
        assert result[f"{key}_engine"], key
    # Each ratio's ceiling (the other side's time over the time rollcall spent inside its networks) can
    # only lie above the ratio: the networks are a part of rollcall's time, and a part the clock did see.
    ratios = (
        "speedup_vs_seed_640x480",
        "speedup_vs_seed_640x480_equal_work",
        "speedup_vs_seed_640x480_same_embedder",
        "speedup_vs_seed_640x480_equal_work_same_embedder",
        "detect_vs_facenet_pytorch_640x480",
    )
    for key in ratios:
        assert result[key] <= result[f"{key}_ceiling"] < 100, key
    versus_seed = result["seed"]["sizes"]["640x480"]["10"]
    assert 0 < versus_seed["rollcall_stage_median_ms"]["networks"] < versus_seed["rollcall_ms"]["median"]
    for goal in (g for g in result["goals"] if g["source"] in ratios):
        least = float(goal["target"].removeprefix(">= ").removesuffix("x"))
        assert goal["ceiling"] == result[f"{goal['source']}_ceiling"]
        assert goal["reachable"] is (goal["ceiling"] >= least), goal
    assert "modelfr_36mp_s" not in result, "--tiny runs no worker"
    assert result["peers"]["sizes"]["640x480"]["faces_found"] == {"rollcall": 2, "facenet_pytorch": 2}
    assert result["classroom"]["faces_pasted"] >= 30
    assert {"detect", "align_embed", "match_10"} <= set(result["stage_medians_ms"]["640x480"])
    machine = result["machine"]
    assert machine["cpu_count"] >= 1 and machine["torch"] and machine["git_commit"] and machine["date_utc"]
    assert [goal["target"] for goal in result["goals"]] == [
        ">= 10x",
        "< 10 ms",
        ">= 1.8x",
        "< 5 ms",
        ">= 5x",
        ">= 3x",
        ">= 3x",
        ">= 1.8x",
        ">= 3.5x",
        ">= 0.75",
        ">= 0.75",
        "<= 250 ms",
        "<= 1.3x",
        "< 5 s",
        "<= 1.5 s",
        "<= 1",
        ">= 10 frames/s",
        "<= 250 ms",
        ">= 4",
    ]
    live = result["live"]
    assert set(live["variants"]) == {"defaults", "min_face_20", "min_face_60", "detect_every_2"}
    assert result["live_fps_640x480"] == live["variants"]["defaults"]["fps"] > 0
    assert 0 < result["live_embeddings_per_track_s"] <= 1
    assert live["variants"]["defaults"]["identity"]["obama_and_biden"] == {
        key: {"track_ids": 1, "frames_named_right": 1.0}
        for key in ("obama_and_biden.jpg#0", "obama_and_biden.jpg#1")
    }
    assert json.loads((tmp_path / "benchmarks.json").read_text()) == result
    assert (tmp_path / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seed_way_names_the_same_people_as_rollcall_attendance() -> None:
    import cv2

    from benchmarks.seed_way import SeedFacebank, SeedSameEmbedder, SeedWeights, seed_attendance
    from facebank.records import GalleryRows
    from ml.pipeline import PipelineConfig, load_pipeline
    from ml.weights import ModelStore
    from recognition.gallery import Gallery, assign_faces
    from settings import get_settings

    model_dir = get_settings().model_dir
    pipe = load_pipeline(PipelineConfig(model_dir=model_dir, device="cpu"))
    people = {"obama": (1, "obama.jpg"), "biden": (2, "biden.jpg"), "rose_leslie": (3, "img1.jpg")}
    person_ids, vectors = [], []
    for name, (person_id, photo) in people.items():
        image = cv2.imread(str(shared_dir() / "datasets/facebank" / name / photo))
        found = pipe.detect([image])[0]
        vectors.append(pipe.embed(image, found.landmarks[:1])[0])
        person_ids.append(person_id)
    ids = np.asarray(person_ids, dtype=np.int64)
    rows = GalleryRows(ids, ids.copy(), np.stack(vectors).astype(np.float32))
    gallery = Gallery.from_rows(rows, pipe.embedder.name, pipe.embedder.version, 0, "cpu")
    probe = cv2.imread(str(shared_dir() / "datasets/facebank_probe/two_people.jpg"))
    threshold = pipe.embedder.default_threshold

    seed = seed_attendance(
        probe,
        SeedWeights.from_store(ModelStore(model_dir)),
        SeedSameEmbedder(pipe.embedder),
        SeedFacebank.from_rows(rows),
        threshold,
    )
    ours = assign_faces(pipe.embed(probe, pipe.detect([probe])[0].landmarks), gallery, threshold)

    assert sorted(seed.present) == [1, 2]
    assert sorted(p.person_id for p in ours.present) == [1, 2]
    assert set(seed.ms) == {"load", "detect", "align_embed", "match"}


def test_seed_cascade_on_the_halved_frame_finds_the_faces_rollcall_finds_at_equal_work() -> None:
    import cv2

    from benchmarks.classroom import score_detections
    from benchmarks.seed_way import (
        EQUAL_WORK_MIN_FACE,
        SEED_SCALE,
        SeedWeights,
        load_nets_per_request,
        seed_detect,
    )
    from ml.mtcnn import MTCNNParams
    from ml.pipeline import PipelineConfig, load_pipeline
    from ml.weights import ModelStore
    from settings import get_settings

    model_dir = get_settings().model_dir
    equal = load_pipeline(
        PipelineConfig(
            model_dir=model_dir, device="cpu", mtcnn=MTCNNParams(min_face_size=EQUAL_WORK_MIN_FACE)
        )
    )
    nets = load_nets_per_request(SeedWeights.from_store(ModelStore(model_dir)))
    for name, faces in (("two_people.jpg", 2), ("obama_small.jpg", 1), ("no_face_synthetic.png", 0)):
        frame = cv2.imread(str(shared_dir() / "oracles/mtcnn_facenet_pytorch/images" / name))
        half = cv2.resize(frame, None, fx=SEED_SCALE, fy=SEED_SCALE, interpolation=cv2.INTER_LINEAR)
        boxes, landmarks = seed_detect(cv2.cvtColor(half, cv2.COLOR_BGR2RGB), nets)
        ours = equal.detect([frame])[0]
        sure = ours.boxes[ours.probs >= 0.98]  # the seed's last threshold
        assert len(boxes) == len(sure) == faces, name
        assert landmarks.shape == (faces, 5, 2)
        score = score_detections(sure, boxes[:, :4] / SEED_SCALE, boxes[:, 4], min_prob=0.0, min_iou=0.6)
        assert score == {"faces": faces, "found": faces, "false_boxes": 0}, name


def test_faithful_seed_embeds_each_face_with_mobilefacenet_one_forward_autograd_on() -> None:
    """The seed's own embedder, as its code ran it: MobileFaceNet (221 M multiply-adds per 112×112 chip,
    as its paper states), a 512-D unit vector per face, one forward pass per face, autograd on."""
    import cv2
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.seed_mobilefacenet import CHIP_SIZE, seed_embedder
    from benchmarks.seed_way import SeedMobileFaceNet
    from ml.pipeline import PipelineConfig, load_pipeline
    from settings import get_settings

    network = seed_embedder()
    with FlopCounterMode(display=False) as flops:
        network(torch.zeros(1, 3, CHIP_SIZE, CHIP_SIZE))
    assert round(flops.get_total_flops() / 2 / 1e6) == 221
    frame = cv2.imread(str(shared_dir() / "datasets/facebank_probe/two_people.jpg"))
    pipe = load_pipeline(PipelineConfig(model_dir=get_settings().model_dir, device="cpu"))
    landmarks = pipe.detect([frame])[0].landmarks
    forwards: list[tuple[int, bool]] = []
    network.register_forward_hook(
        lambda _m, inputs, _o: forwards.append((len(inputs[0]), torch.is_grad_enabled()))
    )
    vectors = SeedMobileFaceNet(network).embed_each(frame, landmarks)
    assert vectors.shape == (2, 512)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2))
    assert forwards == [(1, True), (1, True)]
