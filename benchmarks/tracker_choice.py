"""Which multi-object tracker keeps faces' identities best: the measurement behind ``live.tracking``'s choice.

Each candidate tracks the same faces, detected once by rollcall's own detector on the live scenes
(``benchmarks.live_scenes``: still pairs and groups, a person walking in, one leaving, one crossing in
front of another), detecting every frame and every other frame (the tracker predicting in between).
Per scene it reports, against where the faces truly are: identity switches, fragmentations (a face
tracked, lost, tracked again), how many track ids each face got, coverage (face-frames inside a track)
and the tracker's own time per frame.

The candidates that are not rollcall dependencies are installed beside it, never into the venv:

    .venv/bin/pip install --no-deps --target /tmp/trk/norfair norfair==2.3.0 filterpy==1.4.5
    .venv/bin/pip install --no-deps --target /tmp/trk/trackers trackers==2.6.1 supervision==0.31.2 \
        pydeprecate==0.13.0 tqdm defusedxml
    .venv/bin/python -m benchmarks.tracker_choice \\
        --candidate norfair=/tmp/trk/norfair --candidate bytetrack=/tmp/trk/trackers \\
        --candidate norfair-enough=

(an empty path: the venv's own). docs/live.md records a run and the choice.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.live_scenes import match_truth

# Frames an unseen face keeps its track, for every candidate: 1.5 s at the scenes' 10 frames/s, as
# ROLLCALL_LIVE_TRACK_KEEP_S's default.
KEEP_FRAMES = 15
# A detection joins a track whose box it overlaps this much (ByteTrack's default, given to every candidate).
TRACK_IOU = 0.1
ADAPTERS = ("norfair", "norfair-enough", "bytetrack")
Step = Callable[[np.ndarray | None, np.ndarray | None, int], list[tuple[int, np.ndarray]]]


def detect_scenes(frames: int, out: Path) -> None:
    """Detect every scene's faces once (rollcall's detector, the live defaults) and save them with truth."""
    import torch

    from benchmarks import live_scenes
    from ml.bounded import at_least, detect_bounded
    from ml.mtcnn import MTCNNParams
    from ml.pipeline import PipelineConfig, load_pipeline
    from settings import get_settings

    torch.set_num_threads(2)
    settings = get_settings()
    pipe = load_pipeline(PipelineConfig(settings.model_dir, device="cpu", engine="openvino"))
    params = MTCNNParams(min_face_size=settings.live_min_face_px)
    saved: dict[str, Any] = {}
    for scene in live_scenes.scenes_for_tracking(frames):
        rows = []
        for _, image, truth in scene.frames():
            found = detect_bounded(pipe.detector, [image], params, None)[0]
            found = at_least(found, settings.live_min_face_prob)
            rows.append(
                {
                    "boxes": found.boxes.tolist(),
                    "probs": found.probs.tolist(),
                    "truth": {t.key: t.box.tolist() for t in truth},
                }
            )
        saved[scene.name] = rows
    out.write_text(json.dumps(saved))


def make_tracker(name: str) -> Step:
    """A candidate behind one call: detections of a frame (or None: predict only) → (track id, box)."""
    if name in ("norfair", "norfair-enough"):
        from norfair import Detection, Tracker

        tracker = Tracker(
            distance_function="iou",
            distance_threshold=1 - TRACK_IOU,
            hit_counter_max=KEEP_FRAMES,
            initialization_delay=0,
        )

        detected = [0]  # the last frame with detections (norfair copies a detection, never its data)
        frame = [0]

        def norfair_step(
            boxes: np.ndarray | None, probs: np.ndarray | None, period: int
        ) -> list[tuple[int, np.ndarray]]:
            # Reported as live.tracking reports them: tracks a detection of the last detected frame
            # joined; the others coast unreported until they come back or expire.
            frame[0] += 1
            if boxes is None or probs is None:
                objects = tracker.update()
            else:
                detected[0] = frame[0]
                objects = tracker.update(
                    [
                        Detection(points=b.reshape(2, 2), scores=np.array([p, p]), data=frame[0])
                        for b, p in zip(boxes, probs, strict=True)
                    ],
                    period=period,
                )
            return [
                (int(o.id), o.estimate.reshape(4))
                for o in objects
                if o.id is not None and o.last_detection.data == detected[0]
            ]

        return norfair_step
    if name == "bytetrack":
        import supervision as sv
        from trackers import ByteTrackTracker

        byte = ByteTrackTracker(
            lost_track_buffer=KEEP_FRAMES,
            frame_rate=10,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=TRACK_IOU,
        )

        def byte_step(
            boxes: np.ndarray | None, probs: np.ndarray | None, period: int
        ) -> list[tuple[int, np.ndarray]]:
            if boxes is None or probs is None or len(boxes) == 0:
                found = byte.update(sv.Detections.empty())
            else:
                found = byte.update(
                    sv.Detections(xyxy=boxes, confidence=probs, class_id=np.zeros(len(boxes), dtype=int))
                )
            return [(int(t), b) for t, b in zip(found.tracker_id, found.xyxy, strict=True) if t >= 0]

        return byte_step
    raise ValueError(f"unknown tracker {name!r}; choose among {ADAPTERS}")


def score(name: str, detections: dict[str, Any], detect_every: int) -> dict[str, Any]:
    """Run a fresh ``name`` tracker over each scene and score it against the truth."""
    result: dict[str, Any] = {}
    for scene, rows in detections.items():
        step = make_tracker(name)
        history: dict[str, list[int | None]] = {}
        update_us: list[float] = []
        false_frames = 0
        for index, row in enumerate(rows):
            detect = index % detect_every == 0
            boxes = np.asarray(row["boxes"], dtype=np.float64).reshape(-1, 4) if detect else None
            probs = np.asarray(row["probs"], dtype=np.float64) if detect else None
            started = time.perf_counter()
            tracks = step(boxes, probs, detect_every)
            update_us.append((time.perf_counter() - started) * 1e6)
            matched = match_truth(row["truth"], tracks)
            for key in row["truth"]:
                history.setdefault(key, []).append(matched.get(key))
            false_frames += len(tracks) - len(matched)
        result[scene] = {**_identity_scores(history), "false_track_frames": false_frames}
        result[scene]["update_us_median"] = round(float(np.median(update_us)), 1)
    totals = {
        key: sum(s[key] for s in result.values())
        for key in ("id_switches", "fragmentations", "extra_ids", "false_track_frames")
    }
    covered = [s["coverage"] for s in result.values()]
    return {
        "scenes": result,
        "total": {
            **totals,
            "coverage_mean": round(float(np.mean(covered)), 3),
            "update_us_median": round(float(np.median([s["update_us_median"] for s in result.values()])), 1),
        },
    }


def _identity_scores(history: dict[str, list[int | None]]) -> dict[str, Any]:
    switches = fragments = extra = covered = total = 0
    for ids in history.values():
        seen = [i for i in ids if i is not None]
        covered += len(seen)
        total += len(ids)
        extra += max(0, len(set(seen)) - 1)
        switches += sum(1 for a, b in itertools.pairwise(seen) if a != b)
        tracked = [i is not None for i in ids]
        first = tracked.index(True) if True in tracked else len(tracked)
        fragments += sum(1 for a, b in itertools.pairwise(tracked[first:]) if a and not b)
        if tracked and not tracked[-1] and True in tracked:
            fragments -= 1  # lost at the end is not a fragment
    return {
        "id_switches": switches,
        "fragmentations": max(0, fragments),
        "extra_ids": extra,
        "coverage": round(covered / total, 3) if total else 1.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracker_choice", description=__doc__)
    parser.add_argument("--candidate", action="append", default=[], help="name=PYTHONPATH (name in ADAPTERS)")
    parser.add_argument("--frames", type=int, default=80, help="frames per scene (10 frames/s)")
    parser.add_argument("--score", help=argparse.SUPPRESS)  # child: name of the tracker to score
    parser.add_argument("--detections", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score:
        detections = json.loads(args.detections.read_text())
        print(json.dumps({f"every_{n}": score(args.score, detections, n) for n in (1, 2)}))
        return 0
    with tempfile.TemporaryDirectory(prefix="rollcall-trackers-") as folder:
        saved = Path(folder) / "detections.json"
        detect_scenes(args.frames, saved)
        results: dict[str, Any] = {"frames_per_scene": args.frames, "keep_frames": KEEP_FRAMES}
        for entry in args.candidate:
            name, _, path = entry.partition("=")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (path, os.getcwd()) if p)}
            child = [
                sys.executable,
                "-m",
                "benchmarks.tracker_choice",
                "--score",
                name,
                "--detections",
                str(saved),
            ]
            done = subprocess.run(child, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"scoring {name} failed:\n{done.stderr[-3000:]}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
