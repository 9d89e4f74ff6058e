"""Part ``live``: one camera's frames through the live processor, in this process (no reader, no Redis).

The frames are the live scenes (``benchmarks.live_scenes``) at 640×480 and 10 frames/s, rendered before
any clock starts: three people still (two enrolled, 50–60 px faces), one walking in beside another,
one crossing in front of another. The people are enrolled in a SQLite facebank read through the
workers' snapshots. Each variant (detection settings) gets its own processor; the variants take turns
frame by frame, so a busy machine slows them alike.

Reported per variant: frames processed per second (1000 / mean ms per frame), the per-stage time,
embeddings per track-second (on the scenes' clock), and identity against where the faces truly are
(track ids per person, frames named right). ``live_fps_640x480`` and ``live_embeddings_per_track_s`` are
the defaults' (``ROLLCALL_LIVE_*``); ``live_cameras_at_5fps_estimate`` is the bound from the in-process
cost alone, ``live_fps_640x480 / 5`` (the processor already uses both cores); part ``live_events``
measures ``live_cameras_at_5fps`` with a real reader, streams decoded and events published.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.live_scenes import UNKNOWN, Scene, enrol_shared_people, match_truth, still_group, walk_in
from benchmarks.live_scenes import crossing as crossing_scene
from benchmarks.stats import summarize
from facebank.db import upgrade
from facebank.store import Facebank
from live.processor import LiveParams, LiveProcessor
from ml.pipeline import FacePipeline
from recognition.snapshot import Snapshots
from settings import Settings

log = logging.getLogger("benchmarks.live")
FPS = 10.0
DEFAULT = "defaults"
# Detection options against the defaults (ROLLCALL_LIVE_MIN_FACE_PX=40, ROLLCALL_LIVE_DETECT_EVERY=1):
# the jobs' smallest face (20 px), a larger one, and detection on every other frame.
VARIANTS: dict[str, dict[str, Any]] = {
    DEFAULT: {},
    "min_face_20": {"live_min_face_px": 20},
    "min_face_60": {"live_min_face_px": 60},
    "detect_every_2": {"live_detect_every": 2},
}
STAGES = ("detect", "track", "quality", "embed", "match", "total")
# The figures the run's top level carries (issue #23).
HEADLINE = ("live_fps_640x480", "live_embeddings_per_track_s")


def run(pipe: FacePipeline, frames: int) -> dict[str, Any]:
    """Every variant over the three scenes of ``frames`` frames each."""
    scenes = [still_group(frames, FPS), walk_in(frames, FPS), crossing_scene(frames, FPS)]
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-live-") as folder:
        url = f"sqlite:///{Path(folder) / 'facebank.db'}"
        upgrade(url)
        facebank = Facebank.from_url(url)
        try:
            enrol_shared_people(pipe, facebank)
            snapshots = Snapshots(
                facebank,
                pipe.embedder.name,
                pipe.embedder.version,
                pipe.device,
                None,
                pipe.embedder.default_threshold,
            )
            measured = {name: _Measure() for name in VARIANTS}
            for scene in scenes:
                _race(pipe, snapshots, scene, measured)
        finally:
            facebank.close()
    variants = {name: m.report() for name, m in measured.items()}
    default = variants[DEFAULT]
    result: dict[str, Any] = {
        "frame": "640x480",
        "scene_fps": FPS,
        "frames_per_scene": frames,
        "scenes": [s.name for s in scenes],
        "engine": pipe.describe()["engine"],
        "variants": variants,
        "live_fps_640x480": default["fps"],
        "live_embeddings_per_track_s": default["embeddings_per_track_s"],
        # The in-process bound; part live_events measures live_cameras_at_5fps with a real reader.
        "live_cameras_at_5fps_estimate": math.floor(default["fps"] / 5),
        "live_stage_medians_ms": default["stage_medians_ms"],
    }
    log.info(
        "live: %.1f frames/s, %.2f embeddings per track-second",
        result["live_fps_640x480"],
        default["embeddings_per_track_s"],
    )
    return result


@dataclasses.dataclass
class _Measure:
    frame_ms: list[float] = dataclasses.field(default_factory=list)
    stages: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    embeddings: int = 0
    track_frames: int = 0
    identity: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        per_frame = summarize(self.frame_ms)
        return {
            "fps": round(1000.0 / per_frame.mean, 2),
            # What the frame in the middle costs: the figure a machine with nothing else to do approaches.
            "fps_at_median_frame": round(1000.0 / per_frame.median, 2),
            "per_frame_ms": per_frame.to_json(),
            # Over the frames that ran the stage (embed and match: only frames that embedded a face).
            "stage_medians_ms": {
                stage: round(float(np.median(self.stages.get(stage, [0.0]))), 3) for stage in STAGES
            },
            "embeddings": self.embeddings,
            "embeddings_per_track_s": round(self.embeddings / (self.track_frames / FPS), 3)
            if self.track_frames
            else 0.0,
            "identity": self.identity,
        }


def _race(pipe: FacePipeline, snapshots: Snapshots, scene: Scene, measured: dict[str, _Measure]) -> None:
    """The variants take turns on each frame of ``scene`` (rotating who goes first)."""
    rendered = list(scene.frames())
    processors = {
        name: LiveProcessor(
            "bench", pipe, snapshots.take, LiveParams.from_settings(Settings(**changes)), scene.fps
        )
        for name, changes in VARIANTS.items()
    }
    names_seen: dict[str, dict[str, list[str | None]]] = {name: {} for name in VARIANTS}
    ids_seen: dict[str, dict[str, set[int]]] = {name: {} for name in VARIANTS}
    order = list(VARIANTS)
    for index, (offset, image, truth) in enumerate(rendered):
        for name in order[index % len(order) :] + order[: index % len(order)]:
            started = time.perf_counter()
            event = processors[name].process(image, 1_000_000.0 + offset).event
            elapsed = (time.perf_counter() - started) * 1000
            measure = measured[name]
            measure.frame_ms.append(elapsed)
            for stage, ms in event["timings_ms"].items():
                measure.stages.setdefault(stage, []).append(ms)
            tracks = {t["track_id"]: t for t in event["tracks"]}
            measure.track_frames += len(tracks)
            measure.embeddings += sum(1 for t in tracks.values() if t["embedded"])
            boxes = [(tid, np.asarray(t["box"])) for tid, t in tracks.items()]
            matched = match_truth({t.key: t.box for t in truth if t.who != UNKNOWN}, boxes)
            for t in truth:
                if t.who == UNKNOWN:
                    continue
                track = tracks.get(matched[t.key]) if t.key in matched else None
                names_seen[name].setdefault(t.key, []).append(track["name"] if track else None)
                if track:
                    ids_seen[name].setdefault(t.key, set()).add(track["track_id"])
    for name, processor in processors.items():
        processor.close()
        whos = {t.key: t.who for _, _, truth in rendered for t in truth}
        measured[name].identity[scene.name] = {
            key: {
                "track_ids": len(ids_seen[name].get(key, set())),
                "frames_named_right": round(Counter(seen)[whos[key]] / len(seen), 3),
            }
            for key, seen in names_seen[name].items()
        }
