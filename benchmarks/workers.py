"""Parts 7 and 8: one real worker behind the real API: batching across jobs, and a 36 MP photo via /modelfr.

Part 7 (``batching``): for each N, in two rounds of opposite order, one worker runs N jobs at once
(``--pool threads --concurrency N``, ``ROLLCALL_WORKER_BATCH_SIZE=N``; N = 1 is the solo pool without
batching) while N closed-loop clients keep it full with 640x480 attendance jobs: throughput, and the
latency a job sees when the worker is full. Part 8 (``modelfr``): the seed's ``/modelfr`` route on a
36-megapixel JPEG from the loopback camera, timed from the request to the answer, with the faces it
found beside those found in the photo it was enlarged from.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import requests

from benchmarks.engine import engine_of
from benchmarks.frames import Frame, scene_dir
from benchmarks.loadgen import JobSample, Target, level_report, run_level
from benchmarks.processes import (
    LoopbackCamera,
    WorkerProcess,
    deployment_env,
    start_api,
    start_redis,
    start_worker,
)
from ml.image import encode_jpeg

log = logging.getLogger("benchmarks.workers")
BIG_PHOTO = "multiface.jpg"
BIG_SIZE = (7360, 4912)  # 36.2 megapixels, a full-frame camera's photo
WORKER_START_TIMEOUT_S = 300


@dataclass
class Stage:
    """Redis, the camera, the API; workers are started and stopped one at a time."""

    workdir: Path
    env: dict[str, str]
    camera_url: str
    api_url: str
    api_key: str
    result_redis_url: str

    @contextmanager
    def worker(self, name: str, batch_size: int) -> Iterator[WorkerProcess]:
        env = {
            **self.env,
            "ROLLCALL_WORKER_BATCH_SIZE": str(batch_size),
            "ROLLCALL_TORCH_THREADS": str(os.cpu_count() or 1),  # one process: all the cores
        }
        pool = "threads" if batch_size > 1 else "solo"
        worker = start_worker(name, env, self.workdir / "logs", pool=pool, concurrency=batch_size)
        try:
            worker.wait_ready(timeout=WORKER_START_TIMEOUT_S)
            yield worker
        finally:
            worker.stop()

    def target(self, paths: Sequence[str]) -> Target:
        return Target(
            self.api_url, self.api_key, self.result_redis_url, [f"{self.camera_url}/{p}" for p in paths]
        )

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(
            f"{self.api_url}{path}", params=params, headers={"X-API-Key": self.api_key}, timeout=120
        )


@contextmanager
def running_stage(workdir: Path) -> Iterator[Stage]:
    with ExitStack() as stack:
        redis, port = start_redis(workdir / "redis")
        stack.callback(redis.stop)
        camera = LoopbackCamera(workdir / "camera")
        camera.directory.mkdir(parents=True, exist_ok=True)
        camera_url = camera.start()
        stack.callback(camera.stop)
        api_key = secrets.token_urlsafe(24)
        env = deployment_env(port, workdir, f"{api_key}:admin")
        api = start_api("api", env, workdir / "logs", threads=16, options=("--timeout", "60"))
        stack.callback(api.stop)
        yield Stage(workdir, env, camera_url, api.url, api_key, f"redis://127.0.0.1:{port}/1")


def _write_frames(stage: Stage, frames: Sequence[Frame]) -> list[str]:
    paths = []
    for i, frame in enumerate(frames):
        name = f"frames/{i:02d}_{Path(frame.photo).stem}.jpg"
        (stage.workdir / "camera" / name).parent.mkdir(parents=True, exist_ok=True)
        (stage.workdir / "camera" / name).write_bytes(encode_jpeg(frame.image))
        paths.append(name)
    return paths


def batching(stage: Stage, frames: Sequence[Frame], batch_sizes: Sequence[int], jobs: int) -> dict[str, Any]:
    """Part 7: per N, throughput and latency of N clients' attendance jobs on one worker batching N."""
    target = stage.target(_write_frames(stage, frames))
    measured: dict[int, tuple[list[JobSample], float]] = {n: ([], 0.0) for n in batch_sizes}
    # Two rounds in opposite orders (1, 4, 8, then 8, 4, 1): drift on a shared machine hits every N alike.
    for order in (list(batch_sizes), list(batch_sizes)[::-1]):
        for n in order:
            with stage.worker(f"batch{n}", n):
                run_level(target, clients=n, jobs=2 * n)  # warm-up: lazy imports, first forwards
                samples, wall = run_level(target, clients=n, jobs=max(jobs // 2, 2 * n))
            measured[n][0].extend(samples)
            measured[n] = (measured[n][0], measured[n][1] + wall)
    levels: dict[str, Any] = {}
    for n, (samples, wall) in measured.items():
        report = level_report(samples, wall, clients=n, workers=1)
        report["batched_jobs"] = sum(1 for s in samples if s.batch > 1)
        levels[str(n)] = report
        log.info(
            "batching: N=%d: %.2f jobs/s, latency p50 %.1f ms",
            n,
            report["throughput_jobs_per_s"],
            report["latency_ms"]["median"],
        )
    base = levels.get("1")
    return {
        "frame_size": f"{frames[0].width}x{frames[0].height}",
        "job": "attendance (empty facebank: detect, align, embed)",
        "clients_per_level": "N (N jobs in flight, so the worker's batches can fill)",
        "levels": levels,
        "throughput_vs_n1": {
            n: round(level["throughput_jobs_per_s"] / base["throughput_jobs_per_s"], 3)
            for n, level in levels.items()
        }
        if base
        else None,
    }


def modelfr_36mp(stage: Stage) -> dict[str, Any]:
    """Part 8: seconds for ``GET /modelfr`` on a 36 MP photo, and the faces found in it."""
    source = cv2.imread(str(scene_dir() / BIG_PHOTO), cv2.IMREAD_COLOR)
    big = cv2.resize(source, BIG_SIZE, interpolation=cv2.INTER_CUBIC)
    (stage.workdir / "camera" / "big.jpg").write_bytes(encode_jpeg(big))
    (stage.workdir / "camera" / "source.jpg").write_bytes(encode_jpeg(source))
    with stage.worker("modelfr", 1):
        # A detect job first: it warms the worker and says which models and engine serve /modelfr.
        warm = requests.post(
            f"{stage.api_url}/v1/jobs/detect",
            json={"url": f"{stage.camera_url}/source.jpg"},
            headers={"X-API-Key": stage.api_key},
            timeout=30,
        ).json()
        models = _wait_result(stage, warm["job_id"])["models"]
        in_source = _modelfr(stage, "source.jpg")
        started = time.perf_counter()
        answer = _modelfr(stage, "big.jpg")
        seconds = time.perf_counter() - started
    log.info("modelfr: 36 MP photo answered in %.2f s: %s", seconds, answer)
    return {
        "photo": f"{BIG_PHOTO} enlarged to {BIG_SIZE[0]}x{BIG_SIZE[1]}",
        "megapixels": round(BIG_SIZE[0] * BIG_SIZE[1] / 1e6, 1),
        "seconds": round(seconds, 3),
        "status": answer["status"],
        "error": answer.get("error"),
        "faces": answer.get("faces"),
        "faces_in_source_photo": in_source.get("faces"),
        "engine": engine_of(models),
    }


def _modelfr(stage: Stage, name: str) -> dict[str, Any]:
    """``/modelfr``'s answer: HTTP status and faces found, or the error code (a timeout is a result too)."""
    response = stage.get("/modelfr", ip=f"{stage.camera_url}/{name}")
    body = response.json()
    if response.status_code != 200:
        return {"status": response.status_code, "error": body.get("error", {}).get("code")}
    return {"status": 200, "faces": len(body["box"])}


def _wait_result(stage: Stage, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = stage.get(f"/v1/jobs/{job_id}").json()
        if body["state"] == "succeeded":
            result: dict[str, Any] = body["result"]
            return result
        if body["state"] in ("failed", "revoked"):
            raise RuntimeError(f"warm-up job {job_id} ended {body['state']}: {body.get('error')}")
        time.sleep(0.05)
    raise TimeoutError(f"warm-up job {job_id} did not end within 120 s")
