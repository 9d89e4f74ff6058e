"""Detection and embedding per frame, stage by stage, before and after a change, in one process.

    OMP_WAIT_POLICY=PASSIVE python -m scripts.cascade_before_after --base 15a0b86 --threads 2
    OMP_WAIT_POLICY=PASSIVE python -m scripts.cascade_before_after --base ef21127 --base-engine openvino
    OMP_WAIT_POLICY=PASSIVE python -m scripts.cascade_before_after --base 73ec1e9 --base-engine openvino \
        --engines openvino --size 1280x720

The base revision's ``ml/mtcnn.py`` (from git) and today's run back to back on the same frames (the
oracle scene photos stretched to ``--size``, 640×480 by default): the base's cascade (on torch, or on
``--base-engine`` when the base already had engines), today's torch cascade and today's cascade and
embedder on each installed engine. Every stage is also split into the time inside its network
(``net_*``, the runner's call, input copies for the engine included) and the time around it
(``outside_*``: resampling, decoding, NMS, Python). Prints one JSON object: median milliseconds per frame
for each stage, ratios base / today from passes measured back to back, and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from typing import Any

import cv2
import numpy as np
import torch

from benchmarks.peers import facenet_pytorch_mtcnn
from ml.align import align_faces
from ml.dlib_resnet import DlibResNetEmbedder
from ml.engines import ENGINES, EngineLoader, available_engines
from ml.mtcnn import MTCNN, MTCNNParams
from ml.timing import StageTimer
from ml.weights import ModelStore
from scripts.git_revision import import_at
from settings import get_settings
from tests.shared_data import shared_dir


def _timed_base(module: Any, store: ModelStore, engine: str, threads: int) -> Any:
    """The base detector on ``engine``, its stages timed by wrapping its methods (it has no timer of its
    own)."""
    loader = EngineLoader(engine, store, threads)
    if not hasattr(module.MTCNN, "use_engine"):  # built with its sessions (ml.engines.sessions)
        detector = module.MTCNN.from_store(store, "cpu", loader)
    else:  # a revision that built the detector on torch, then switched its engine
        detector = module.MTCNN.from_store(store, "cpu")
        if engine != "torch":
            detector.use_engine(loader)
    timer: dict[str, StageTimer] = {"t": StageTimer()}
    for method, stage in (("_propose", "pyramid+pnet"), ("_refine", "rnet"), ("_output", "onet")):
        original = getattr(detector, method)

        def wrapped(*args: Any, _original: Any = original, _stage: str = stage) -> Any:
            with timer["t"].stage(_stage):
                return _original(*args)

        setattr(detector, method, wrapped)
    _time_networks(detector, timer)
    return detector, timer


class _TimedSession:
    """A session timed into one stage; also stands in for a revision's runner (a plain callable)."""

    def __init__(self, run: Any, timer: dict[str, StageTimer], stage: str) -> None:
        self._run, self._timer, self._stage = run, timer, stage

    def run(self, *inputs: Any) -> Any:
        with self._timer["t"].stage(self._stage):
            return self._run(*inputs)

    __call__ = run


def _time_networks(detector: Any, timer: dict[str, StageTimer]) -> None:
    """Time each network's session (a revision before sessions: its runner) into stage ``net_<name>`` of
    ``timer["t"]`` (a base without either, before the engines, is left as it is)."""
    sessions = getattr(detector, "sessions", None)
    runners = sessions if sessions is not None else getattr(detector, "_run", None)
    if not runners:
        return
    for name, run in list(runners.items()):
        runners[name] = _TimedSession(run.run if sessions is not None else run, timer, f"net_{name}")


def _split(stages: dict[str, float]) -> dict[str, float]:
    """Stage times plus each stage's time outside its network and the detection's."""
    nets = {"pyramid+pnet": "net_pnet", "rnet": "net_rnet", "onet": "net_onet"}
    out = dict(stages)
    if all(n in stages for n in nets.values()):
        for stage, net in nets.items():
            out[f"outside_{stage}"] = stages[stage] - stages[net]
        out["net_detect"] = sum(stages[n] for n in nets.values())
        out["outside_detect"] = stages["detect"] - out["net_detect"]
    return out


def _frames(size: str) -> list[np.ndarray]:
    folder = shared_dir() / "oracles/mtcnn_facenet_pytorch/images"
    width, height = (int(side) for side in size.split("x"))
    return [cv2.resize(cv2.imread(str(p)), (width, height)) for p in sorted(folder.glob("*.*"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="15a0b86")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-face", type=int, default=20)
    parser.add_argument("--size", default="640x480", help="frame size the photos are stretched to")
    parser.add_argument("--base-engine", default="torch", choices=ENGINES)
    parser.add_argument(
        "--engines",
        type=lambda text: text.split(","),
        default=None,
        help="today's engines to run (default: every installed one); ONNX Runtime's threads spin after "
        "each call and slow whatever runs next, so leave it out when it is not what is compared",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also run facenet-pytorch's MTCNN on each frame (benchmarks.peers) and report its time over "
        "the base's and today's detection",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    store = ModelStore(get_settings().model_dir)
    params = MTCNNParams(min_face_size=args.min_face)
    base_name = f"base_{args.base_engine}"
    base, base_timer = _timed_base(import_at(args.base, "ml/mtcnn.py"), store, args.base_engine, args.threads)
    contenders: dict[str, tuple[Any, Any]] = {}
    timers: dict[str, dict[str, StageTimer]] = {}
    for engine in args.engines or available_engines():
        loader = EngineLoader(engine, store, args.threads)
        detector = MTCNN.from_store(store, "cpu", loader)
        embedder = DlibResNetEmbedder.from_store(store, "cpu", loader)
        timers[engine] = {"t": StageTimer()}
        _time_networks(detector, timers[engine])
        contenders[engine] = (detector, embedder)
    # today's embedder on the base's engine
    base_embedder = DlibResNetEmbedder.from_store(
        store, "cpu", EngineLoader(args.base_engine, store, args.threads)
    )
    frames = _frames(args.size)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    per_pass: dict[str, list[dict[str, float]]] = {}

    def record(name: str, current: int, stages: dict[str, float]) -> None:
        """Add one frame's stage times to pass ``current`` of ``name`` (pass -1, the warm-up, is dropped)."""
        if current < 0:
            return
        per_pass.setdefault(name, [])
        if len(per_pass[name]) <= current:
            per_pass[name].append({})
        for stage, ms in stages.items():
            per_pass[name][current][stage] = per_pass[name][current].get(stage, 0.0) + ms

    def embed_ms(embedder: Any, frame: np.ndarray, landmarks: np.ndarray) -> float:
        chips = align_faces(frame, landmarks, embedder.chip_size, embedder.template)
        started = time.perf_counter()
        embedder.embed(chips)
        return (time.perf_counter() - started) * 1000

    def measure_frame(frame: np.ndarray, current: int) -> None:
        base_timer["t"] = StageTimer()
        started = time.perf_counter()
        found = base.detect([frame], params)[0]
        detect = (time.perf_counter() - started) * 1000
        embed = embed_ms(base_embedder, frame, found.landmarks)
        record(base_name, current, _split({**base_timer["t"].ms, "detect": detect, "embed": embed}))
        for engine, (detector, embedder) in contenders.items():
            timer = timers[engine]["t"] = StageTimer()
            started = time.perf_counter()
            found = detector.detect([frame], params, timer)[0]
            detect = (time.perf_counter() - started) * 1000
            embed = embed_ms(embedder, frame, found.landmarks)
            stages = {**timer.ms, "pyramid+pnet": timer.ms.get("pyramid", 0) + timer.ms.get("pnet", 0)}
            record(f"now_{engine}", current, _split({**stages, "detect": detect, "embed": embed}))
        if peer is not None:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            started = time.perf_counter()
            peer.detect(rgb)
            record("facenet_pytorch", current, {"detect": (time.perf_counter() - started) * 1000})

    with contextlib.ExitStack() as stack:
        peer = stack.enter_context(facenet_pytorch_mtcnn(get_settings().model_dir)) if args.peer else None
        if peer is not None:
            peer.min_face_size = args.min_face
        for current in range(-1, args.repeats):  # pass -1 warms up (oneDNN and OpenVINO build per shape)
            for frame in frames:
                measure_frame(frame, current)
    count = len(frames)
    medians = {
        name: {stage: round(statistics.median(p[stage] for p in passes) / count, 3) for stage in passes[0]}
        for name, passes in per_pass.items()
    }
    ratios = {
        name: {
            stage: round(
                statistics.median(
                    b[stage] / p[stage] for b, p in zip(per_pass[base_name], passes, strict=True)
                ),
                2,
            )
            for stage in (
                "pyramid+pnet",
                "rnet",
                "onet",
                "detect",
                "embed",
                "net_detect",
                "outside_pyramid+pnet",
                "outside_rnet",
                "outside_onet",
                "outside_detect",
            )
            if stage in per_pass[base_name][0] and stage in passes[0]
        }
        for name, passes in per_pass.items()
        if name not in (base_name, "facenet_pytorch")
    }
    peer_over = {
        name: round(
            statistics.median(
                f["detect"] / p["detect"] for f, p in zip(per_pass["facenet_pytorch"], passes, strict=True)
            ),
            2,
        )
        for name, passes in per_pass.items()
        if args.peer and name != "facenet_pytorch"
    }
    print(
        json.dumps(
            {
                "frames": count,
                "size": args.size,
                "threads": args.threads,
                "min_face": args.min_face,
                "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
                "ms_per_frame": medians,
                "base_over_now": ratios,
                **({"facenet_pytorch_detect_over": peer_over} if args.peer else {}),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
