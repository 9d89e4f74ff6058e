"""``python -m benchmarks``: measure rollcall and write ``benchmarks.json`` + ``benchmarks.png``.

Presets: ``--tiny`` (seconds: one photo, 640x480, pipeline and seed only; for the smoke test),
``--quick`` (a few minutes on 2 cores), and the default full run. Any option given explicitly
overrides the preset. Progress goes to stderr; with ``--json`` stdout gets exactly one line, the
result object, so ``python -m benchmarks --quick --json | tail -1`` is machine-readable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# As in the workers (tasks/__init__.py): OpenMP threads that spin-wait made torch stages 10-15x slower on a
# busy machine (BENCHMARKS.md). In the environment before torch is imported (in run), so the workers and
# API this process starts inherit it too.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PARTS = (
    "int8",
    "pipeline",
    "seed",
    "peers",
    "engines",
    "classroom",
    "system",
    "memory",
    "gpu",
    "small_faces",
    "batching",
    "modelfr",
    "cameras",
    "live",
    "readers",
    "live_events",
)
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "parts": ["pipeline", "seed", "peers", "engines", "classroom", "live"],
        "sizes": ["640x480"],
        "galleries": [10],
        "seed_galleries": [10],
        "photos": ["two_people.jpg"],
        "repeats": 1,
        "seed_repeats": 1,
        "warmup": 1,
        "workers": [1],
        "clients": [1],
        "jobs": 3,
        "memory_jobs": 10,
        "batches": [1, 8],
        "batch_sizes": [1, 4],
        "batch_jobs": 8,
        "live_frames": 20,
    },
    "quick": {
        "parts": list(PARTS),
        "sizes": ["640x480", "1280x720", "native"],
        "galleries": [10, 1000, 100000],
        "seed_galleries": [10, 1000],
        # All 13 photos, one measured pass for the ratios (13 back-to-back rounds each): three photos read
        # 3.1x where all thirteen read 2.6x against facenet-pytorch, so the headline ratios need them all.
        "photos": None,
        "repeats": 2,
        "seed_repeats": 1,
        "warmup": 1,
        "workers": [1, 2],
        "clients": [1, 4, 16],
        "jobs": 10,
        "memory_jobs": 80,
        "batches": [1, 8, 32, 128],
        "batch_sizes": [1, 4, 8],
        "batch_jobs": 24,
        "live_frames": 100,
    },
    "full": {
        "parts": list(PARTS),
        "sizes": ["640x480", "1280x720", "native"],
        "galleries": [10, 1000, 100000],
        "seed_galleries": [10, 1000, 100000],
        "photos": None,
        "repeats": 10,
        "seed_repeats": 5,
        "warmup": 1,
        "workers": [1, 2],
        "clients": [1, 4, 16],
        "jobs": 100,
        "memory_jobs": 1000,
        "batches": [1, 8, 32, 128],
        "batch_sizes": [1, 4, 8],
        "batch_jobs": 96,
        "live_frames": 300,
    },
}
NOTES = [
    "seed: the seed's way (benchmarks/seed_way.py) rebuilds MTCNN and reads its weights per request, "
    "halves the frame and runs its own classic cascade (min face 20 px of the halved frame, thresholds "
    "0.7/0.8/0.98, factor 0.707, P-Net per scale with numpy NMS, crops resized one box at a time), "
    "embeds one face per forward with autograd on and matches with one broadcast distance computation; "
    "speedup_vs_seed_*: with its own embedder (MobileFaceNet 112x112, 512-D, randomly initialised), "
    "*_same_embedder: with rollcall's embedder; rollcall is measured at its defaults and at equal work "
    "(min face 40 px of the frame)",
    "peers: facenet-pytorch 2.6.0's MTCNN imported from its wheel (never installed), same frames and "
    "threads, back to back; detect_vs_facenet_pytorch = median of pair ratios, theirs / ours",
    "pipeline and seed totals are sums of stage times measured in one call; speedup = median over "
    "back-to-back pairs of seed time / rollcall time (speedup_of_medians beside it)",
    "system: latency runs from just before the POST to the result in hand (benchmarks/loadgen.py, "
    "--wait); queue overhead = latency - the worker's timings_ms.total, so with more clients than "
    "workers it includes the time a job waits behind others; server_overhead leaves out HTTP and "
    "the client's wait",
    "live: one camera's frames through the live processor in this process (benchmarks/live.py); "
    "live_events: a real reader process with the processor and the API (benchmarks/live_events.py): "
    "live_event_latency_p95_ms from frame decoded to event received by an SSE client, live_cameras_at_5fps "
    "measured by adding cameras to one reader until one gets under 90 % of 5 events/s",
    "wall-clock times on a possibly shared machine: compare ratios measured in one run; "
    "see machine.load_average_*",
]
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "var" / "benchmarks"
log = logging.getLogger("benchmarks")


def _words(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _numbers(text: str) -> list[int]:
    return [int(part) for part in _words(text)]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="reduced sizes: a few minutes on 2 cores")
    preset.add_argument("--tiny", action="store_true", help="minimal: pipeline + seed, one photo, 640x480")
    parser.add_argument("--parts", type=_words, help=f"comma-separated parts among {','.join(PARTS)}")
    parser.add_argument("--sizes", type=_words, help="frame sizes, e.g. 640x480,1280x720,native")
    parser.add_argument(
        "--engine", help="inference engine of the CPU pipeline (default: ROLLCALL_ENGINE, i.e. auto)"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "int8"),
        help="embedder precision of the in-process parts (default: ROLLCALL_EMBEDDER_PRECISION, i.e. "
        "auto); part int8 prepares INT8 in a temporary model dir first",
    )
    parser.add_argument("--photos", type=_words, help="scene photos to use (default: all 13)")
    parser.add_argument("--galleries", type=_numbers, help="synthetic facebank sizes (identities) for part 1")
    parser.add_argument("--seed-galleries", type=_numbers, help="facebank sizes for the seed comparison")
    parser.add_argument("--repeats", type=int, help="measured passes over the photos (parts 1 and 5)")
    parser.add_argument("--seed-repeats", type=int, help="measured passes in the seed comparison")
    parser.add_argument("--warmup", type=int, help="unmeasured passes first")
    parser.add_argument("--workers", type=_numbers, help="worker process counts for part 3, e.g. 1,2")
    parser.add_argument("--clients", type=_numbers, help="concurrent HTTP clients for part 3, e.g. 1,4,16")
    parser.add_argument("--jobs", type=int, help="jobs per load level (at least one per client)")
    parser.add_argument("--memory-jobs", type=int, help="jobs the watched worker runs in all (part 4)")
    parser.add_argument("--batches", type=_numbers, help="faces per forward in the GPU sweep")
    parser.add_argument(
        "--batch-sizes",
        type=_numbers,
        help="jobs one worker batches (ROLLCALL_WORKER_BATCH_SIZE), part batching",
    )
    parser.add_argument("--batch-jobs", type=int, help="measured jobs per batch size (part batching)")
    parser.add_argument("--live-frames", type=int, help="frames of each live scene (part live, 10 frames/s)")
    parser.add_argument(
        "--wait",
        choices=("notify", "poll"),
        default="notify",
        help="how clients learn a job ended (see benchmarks/loadgen.py)",
    )
    parser.add_argument("--poll-ms", type=float, default=5.0, help="poll interval with --wait poll")
    parser.add_argument("--system-size", default="640x480", help="frame size served by the camera in part 3")
    parser.add_argument(
        "--gpu-device", default="cuda", help="device of part 5 (cpu only to check the code path)"
    )
    parser.add_argument("--threads", type=int, help="torch threads in this process (default: torch's own)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line on stdout")
    parser.add_argument("--no-chart", action="store_true", help="skip benchmarks.png")
    args = parser.parse_args(argv)
    chosen = PRESETS["tiny" if args.tiny else "quick" if args.quick else "full"]
    for key, value in chosen.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose among {','.join(PARTS)}")
    return args


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    # Imported here so --help answers without loading torch.
    import torch

    from benchmarks import (
        classroom_attendance,
        engines,
        gpu,
        int8,
        peers,
        pipeline,
        report,
        small_faces,
        system,
        versus_seed,
    )
    from benchmarks.frames import all_scene_names, load_frames, shared_dir
    from benchmarks.galleries import synthetic_gallery, synthetic_rows
    from benchmarks.machine import busy_warning, machine_info
    from benchmarks.seed_mobilefacenet import seed_embedder
    from benchmarks.seed_way import (
        EQUAL_WORK_MIN_FACE,
        SeedFacebank,
        SeedMobileFaceNet,
        SeedSameEmbedder,
        SeedWeights,
    )
    from benchmarks.versus_seed import SeedSide
    from ml.engines import resolve_engine
    from ml.mtcnn import MTCNNParams
    from ml.pipeline import PipelineConfig, load_pipeline
    from ml.weights import ModelStore
    from settings import get_settings

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result: dict[str, Any] = {"schema": 1, "machine": machine_info(argv)}
    busy = busy_warning()
    if busy:
        log.warning("%s", busy)
    photos = args.photos or all_scene_names()
    result["config"] = {k: v for k, v in vars(args).items() if k not in ("out",)}
    result["config"]["photos"] = photos
    parts = set(args.parts)
    model_dir = get_settings().model_dir
    frames = (
        load_frames(photos, args.sizes) if parts & {"pipeline", "seed", "gpu", "peers", "engines"} else {}
    )
    identities = sorted(set(args.galleries) | (set(args.seed_galleries) if "seed" in parts else set()))
    rows = {}
    int8_dir: Path | None = None
    if parts & {
        "pipeline",
        "seed",
        "gpu",
        "small_faces",
        "peers",
        "engines",
        "classroom",
        "live",
        "live_events",
    }:
        settings = get_settings()
        config = PipelineConfig(
            model_dir=model_dir,
            device="cpu",
            engine=args.engine or settings.engine,
            embedder_precision=args.precision or settings.embedder_precision,
            min_face_prob=settings.min_face_prob,
            max_detect_side=settings.max_detect_side,
        )
        on_openvino = resolve_engine(config.engine, torch.device("cpu")) == "openvino"
        if "int8" in parts and config.embedder_precision != "float32" and on_openvino:
            int8_dir = Path(tempfile.mkdtemp(prefix="rollcall-bench-int8-"))
            result["int8"] = int8.run(config, shared_dir(), int8_dir)
            config = dataclasses.replace(config, model_dir=int8_dir)
        pipe = load_pipeline(config)
        result["embedder_precision"] = pipe.embedder.precision
        result["pipeline_load_s"] = round(pipe.load_seconds, 3)
        rows = {n: synthetic_rows(n, pipe.embedder.dim, seed=n) for n in identities}
        galleries = {n: synthetic_gallery(r, pipe.embedder.name, pipe.device) for n, r in rows.items()}
        threshold = pipe.embedder.default_threshold
        if "pipeline" in parts:
            chosen = {n: galleries[n] for n in args.galleries}
            result["pipeline"] = pipeline.run(pipe, frames, chosen, threshold, args.repeats, args.warmup)
        if "seed" in parts:
            weights = SeedWeights.from_store(ModelStore(model_dir))
            faithful = SeedMobileFaceNet(seed_embedder())
            sides = {
                n: {
                    "faithful": SeedSide(
                        faithful, SeedFacebank.from_rows(synthetic_rows(n, faithful.dim, seed=n))
                    ),
                    "same_embedder": SeedSide(
                        SeedSameEmbedder(pipe.embedder), SeedFacebank.from_rows(rows[n])
                    ),
                }
                for n in args.seed_galleries
            }
            equal_work = load_pipeline(
                dataclasses.replace(config, mtcnn=MTCNNParams(min_face_size=EQUAL_WORK_MIN_FACE))
            )
            result["seed"] = versus_seed.run(
                pipe, equal_work, frames, galleries, sides, weights, threshold, args.seed_repeats, args.warmup
            )
        if "peers" in parts:
            at_640 = {size: frames[size] for size in frames if size == "640x480"} or frames
            result["peers"] = peers.run(pipe, model_dir, at_640, args.seed_repeats, args.warmup)
        if "engines" in parts:
            result["engines"] = engines.run(config, photos, max(1, args.seed_repeats))
        if "classroom" in parts:
            result["classroom"] = classroom_attendance.run(
                pipe,
                shared_dir(),
                galleries[report.headline_size(identities)],
                threshold,
                max(3, args.repeats),
                args.warmup,
            )
        if "small_faces" in parts:
            result["small_faces"] = small_faces.run(
                pipe, shared_dir(), max(2, args.repeats // 3), args.warmup
            )
        if "live" in parts:
            from benchmarks import live

            result["live"] = live.run(pipe, args.live_frames)
            result.update({k: result["live"][k] for k in live.HEADLINE})
        if "gpu" in parts:
            result["gpu"] = gpu.run(
                model_dir,
                args.gpu_device,
                frames,
                {n: rows[n] for n in args.galleries},
                args.repeats,
                args.warmup,
                args.batches,
            )
    if parts & {"system", "memory"}:
        workdir = Path(tempfile.mkdtemp(prefix="rollcall-bench-"))
        log.info("system: processes' logs in %s (removed after a successful run)", workdir)
        camera_frames = load_frames(photos, [args.system_size])[args.system_size]
        result["system"], result["memory"] = system.run(
            workdir,
            camera_frames,
            args.workers if "system" in parts else [],
            args.clients,
            args.jobs,
            args.wait,
            args.poll_ms,
            args.memory_jobs if "memory" in parts else None,
        )
        shutil.rmtree(workdir)
    if parts & {"batching", "modelfr"}:
        from benchmarks import workers

        workdir = Path(tempfile.mkdtemp(prefix="rollcall-bench-workers-"))
        log.info("batching/modelfr: processes' logs in %s (removed after a successful run)", workdir)
        with workers.running_stage(workdir) as stage:
            if "batching" in parts:
                batch_frames = load_frames(photos, [args.system_size])[args.system_size]
                result["batching"] = workers.batching(stage, batch_frames, args.batch_sizes, args.batch_jobs)
            if "modelfr" in parts:
                result["modelfr"] = workers.modelfr_36mp(stage)
        shutil.rmtree(workdir)
    if int8_dir is not None:
        shutil.rmtree(int8_dir)
    if "cameras" in parts:
        from benchmarks import cameras

        result["cameras"] = cameras.run()
        result["rtsp_first_frame_s"] = result["cameras"]["rtsp"]["h264"]["first_frame_s"]["median"]
        result["rtsp_keyframe_interval_s"] = result["cameras"]["keyframe_interval_s"]
    if "readers" in parts:
        from benchmarks import readers

        result["readers"] = readers.run()
        result["live_shared_frame_ms"] = result["readers"]["frame"]["shared_median_ms"]
        result["live_handover_s_max"] = max(result["readers"]["handover_s"])
    if "live_events" in parts:
        from benchmarks import live_events

        quick = args.live_frames <= PRESETS["quick"]["live_frames"]
        result["live_events"] = live_events.run(
            pipe, max_cameras=6 if quick else 10, window_s=6 if quick else 15
        )
        result.update({k: result["live_events"][k] for k in live_events.HEADLINE})
    result.update(report.speedups(result.get("seed")))
    result.update(report.headline(result))
    result["stage_medians_ms"] = report.stage_medians(result.get("pipeline"), result.get("seed"))
    result["goals"] = report.goals(result)
    result["notes"] = [*NOTES, *([busy] if busy else [])]
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


def human_summary(result: dict[str, Any]) -> str:
    lines = [f"rollcall benchmarks, commit {result['machine']['git_commit']}, {result['elapsed_s']} s"]
    if "embedder_precision" in result:
        lines.append(f"  embedder precision: {result['embedder_precision']}")
    for size, stages in result["stage_medians_ms"].items():
        lines.append(f"  {size:>9}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items()))
    for key, value in result.items():
        if key.startswith("speedup_vs_seed_") and key != "speedup_vs_seed_identities":
            if not key.endswith(("_engine", "_ceiling")):
                lines.append(f"  {key}: {value}x ({result.get(f'{key}_engine', 'torch')})")
    for key, unit in (
        ("live_fps_640x480", " frames/s"),
        ("live_embeddings_per_track_s", " per track-second"),
    ):
        if key in result:
            lines.append(f"  {key}: {result[key]}{unit} ({result['live']['engine']})")
    for key, unit in (
        ("live_event_latency_p95_ms", " ms (frame decoded -> event in an SSE client's hands)"),
        ("live_cameras_at_5fps", " (640x480 cameras one reader kept at 5 frames/s, measured)"),
    ):
        if key in result:
            lines.append(f"  {key}: {result[key]}{unit}")
    for key, unit in (
        ("detect_vs_facenet_pytorch_640x480", "x"),
        ("detect_network_share_640x480", ""),
        ("detect_network_share_1920x1080", ""),
        ("torch_over_openvino_detect_1280x720", "x"),
        ("classroom_1080p_attendance_ms", " ms"),
        ("modelfr_36mp_s", " s"),
    ):
        if key in result:
            lines.append(f"  {key}: {result[key]}{unit} ({result[f'{key}_engine']})")
    for goal in result["goals"]:
        state = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        ceiling = f"; ceiling {goal['ceiling']}" if "ceiling" in goal else ""
        lines.append(f"  goal {goal['goal']} {goal['target']}: {goal['measured']} ({state}{ceiling})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # progress of every benchmarks.* logger; libraries stay at WARNING
    result = run(args, argv)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "benchmarks.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", json_path)
    if not args.no_chart:
        from benchmarks.chart import draw

        log.info("wrote %s", draw(result, args.out / "benchmarks.png"))
    if args.json:
        print(json.dumps(result, separators=(",", ":")), flush=True)
    else:
        print(human_summary(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
