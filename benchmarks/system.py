"""Part 3: the whole system end to end, over HTTP, with real processes.

One private ``redis-server`` and a loopback camera serving 640x480 JPEG frames; then one deployment
per worker count, all running at once and isolated by Redis database: its own API (gunicorn) and its
own ``celery -A tasks worker --pool solo`` processes (torch threads = cores / workers, as
``ROLLCALL_TORCH_THREADS=0`` gives prefork children). The deployments share one facebank file, into
which the shared facebank (5 people, 9 photos) is enrolled over the API, so attendance jobs match real
people. Load levels then alternate between the deployments (1 worker, 2 workers, then 2, 1, ...), so
a busy spell on a shared machine does not land on one side only; idle workers wait on Redis, using no
CPU.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks import memory
from benchmarks.frames import Frame, shared_dir
from benchmarks.loadgen import Target, level_report, run_level
from benchmarks.processes import (
    LoopbackCamera,
    WorkerProcess,
    deployment_env,
    rss_kib,
    start_api,
    start_redis,
    start_worker,
)
from ml.image import encode_jpeg

log = logging.getLogger("benchmarks.system")
FACEBANK = "datasets/facebank"
WORKER_START_TIMEOUT_S = 300


@dataclass
class Deployment:
    """One API and its workers on their own pair of Redis databases."""

    name: str
    worker_count: int
    torch_threads: int
    env: dict[str, str]
    api_url: str
    api_key: str
    result_redis_url: str
    workers: list[WorkerProcess] = field(default_factory=list)

    def target(self, frame_urls: Sequence[str], wait: str, poll_ms: float) -> Target:
        return Target(self.api_url, self.api_key, self.result_redis_url, frame_urls, wait, poll_ms)

    def start_workers(self, log_dir: Path) -> None:
        env = {**self.env, "ROLLCALL_TORCH_THREADS": str(self.torch_threads)}
        for i in range(self.worker_count):
            self.workers.append(start_worker(f"{self.name}-w{i + 1}", env, log_dir))

    def wait_ready(self) -> None:
        for worker in self.workers:
            worker.wait_ready(timeout=WORKER_START_TIMEOUT_S)

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


def enrol_shared_facebank(deployment: Deployment, camera_url: str, folder: Path) -> dict[str, int]:
    """Create each person of the shared facebank over the API and enrol their photos from the camera."""
    http = requests.Session()
    http.headers["X-API-Key"] = deployment.api_key
    api = deployment.api_url
    counts = {"people": 0, "faces": 0}
    try:
        for person_dir in sorted(folder.iterdir()):
            answer = http.post(f"{api}/v1/people", json={"display_name": person_dir.name}, timeout=30)
            if answer.status_code != 201:
                raise RuntimeError(f"creating {person_dir.name} answered {answer.status_code}: {answer.text}")
            person_id = answer.json()["id"]
            counts["people"] += 1
            for photo in sorted(person_dir.iterdir()):
                url = f"{camera_url}/facebank/{person_dir.name}/{photo.name}"
                answer = http.post(f"{api}/v1/people/{person_id}/faces", json={"url": url}, timeout=120)
                if answer.status_code != 201:
                    raise RuntimeError(f"enrolling {url} answered {answer.status_code}: {answer.text}")
                counts["faces"] += 1
    finally:
        http.close()
    return counts


def _camera_folder(root: Path, frames: Sequence[Frame]) -> list[str]:
    """Write the frames as JPEG files and copy the shared facebank beside them; return frame paths."""
    (root / "frames").mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        name = f"frames/{i:02d}_{Path(frame.photo).stem}.jpg"
        (root / name).write_bytes(encode_jpeg(frame.image))
        paths.append(name)
    shutil.copytree(shared_dir() / FACEBANK, root / "facebank", dirs_exist_ok=True)
    return paths


@dataclass
class Bench:
    """The running pieces: camera, deployments, and where their logs go."""

    workdir: Path
    camera_url: str
    frame_urls: list[str]
    deployments: list[Deployment]


@contextmanager
def running_system(
    workdir: Path, frames: Sequence[Frame], worker_counts: Sequence[int], api_threads: int
) -> Iterator[Bench]:
    """Redis, the camera and one deployment per worker count, workers loaded; all stopped on the way out."""
    cores = os.cpu_count() or 1
    with ExitStack() as stack:
        redis, port = start_redis(workdir / "redis")
        stack.callback(redis.stop)
        camera = LoopbackCamera(workdir / "camera")
        frame_paths = _camera_folder(camera.directory, frames)
        camera_url = camera.start()
        stack.callback(camera.stop)
        deployments = []
        for index, count in enumerate(worker_counts):
            api_key = secrets.token_urlsafe(24)
            env = deployment_env(port, workdir, f"{api_key}:admin", database=2 * index)
            api = start_api(
                "api", env, workdir / "logs" / f"{count}w", threads=api_threads, options=("--timeout", "60")
            )
            stack.callback(api.stop)
            deployment = Deployment(
                name=f"bench{count}w",
                worker_count=count,
                torch_threads=max(1, cores // count),
                env=env,
                api_url=api.url,
                api_key=api_key,
                result_redis_url=f"redis://127.0.0.1:{port}/{2 * index + 1}",
            )
            stack.callback(deployment.stop_workers)
            deployments.append(deployment)
        for deployment in deployments:
            log.info(
                "system: starting %d worker(s), %d torch thread(s) each",
                deployment.worker_count,
                deployment.torch_threads,
            )
            deployment.start_workers(workdir / "logs")
        for deployment in deployments:
            deployment.wait_ready()
        yield Bench(workdir, camera_url, [f"{camera_url}/{p}" for p in frame_paths], deployments)


def run(
    workdir: Path,
    frames: Sequence[Frame],
    worker_counts: Sequence[int],
    client_counts: Sequence[int],
    jobs_per_level: int,
    wait: str,
    poll_ms: float,
    memory_jobs: int | None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Part 3's JSON (None when no worker count is given) and, when ``memory_jobs`` is set, part 4's.

    Part 4 watches the worker of the 1-worker deployment: its RSS after loading the models (before
    any job) and as it runs jobs, the enrolment, warm-up and load levels included.
    """
    counts = sorted(set(worker_counts) | ({1} if memory_jobs else set()))
    levels: list[dict[str, Any]] = []
    memory_report = None
    api_threads = max(8, 2 * max(client_counts, default=1))
    with running_system(workdir, frames, counts, api_threads) as bench:
        by_count = {d.worker_count: d for d in bench.deployments}
        watched = by_count[1].workers[0] if memory_jobs else None
        after_load = rss_kib(watched.pid) if watched else None
        jobs_on_watched = 0
        enrolled = enrol_shared_facebank(
            by_count[counts[0]], bench.camera_url, bench.workdir / "camera/facebank"
        )
        jobs_on_watched += enrolled["faces"] if counts[0] == 1 else 0
        targets = {d.worker_count: d.target(bench.frame_urls, wait, poll_ms) for d in bench.deployments}
        warmup = {count: 2 * count for count in targets}  # the first jobs pay for lazy imports
        for count, target in targets.items():
            run_level(target, clients=count, jobs=warmup[count])
        jobs_on_watched += warmup.get(1, 0)
        measured = [c for c in counts if c in worker_counts]
        for step, clients in enumerate(client_counts):
            order = measured if step % 2 == 0 else measured[::-1]
            for count in order:
                jobs = max(jobs_per_level, clients)
                samples, wall = run_level(targets[count], clients, jobs)
                jobs_on_watched += jobs if count == 1 else 0
                report = level_report(samples, wall, clients, count)
                levels.append(report)
                log.info(
                    "system: %d worker(s), %d client(s): %.2f jobs/s, latency p50 %.1f ms, "
                    "queue overhead p50 %.1f ms",
                    count,
                    clients,
                    report["throughput_jobs_per_s"],
                    report["latency_ms"]["median"],
                    report["queue_overhead_ms"]["median"],
                )
        if watched is not None and after_load is not None and memory_jobs:
            memory_report = memory.measure(watched, targets[1], after_load, jobs_on_watched, memory_jobs)
    if not worker_counts:
        return None, memory_report
    levels.sort(key=lambda level: (level["workers"], level["clients"]))
    cores = os.cpu_count() or 1
    return {
        "wait": wait,
        "poll_ms": poll_ms if wait == "poll" else None,
        "frames": [frame.photo for frame in frames],
        "frame_size": f"{frames[0].width}x{frames[0].height}",
        "facebank_enrolled": enrolled,
        "torch_threads_per_worker": {str(c): max(1, cores // c) for c in worker_counts},
        "order": "load levels alternate between the deployments (ABBA by client count)",
        "levels": levels,
    }, memory_report
