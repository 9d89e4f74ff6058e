"""Closed-loop HTTP clients: each submits an attendance job to the API, waits for it, and goes again.

A job's end-to-end latency runs from just before ``POST /v1/jobs/attendance`` to the moment the
client holds the result from ``GET /v1/jobs/<id>``. Waiting is either ``notify`` (the client listens
on the result backend's Redis channel for the job, then makes the one GET a polling client would make
last: no poll interval in the figure) or ``poll`` (GET every ``poll_ms`` until the job ends).
Queue overhead = end-to-end latency minus the worker's own ``timings_ms.total``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import requests

from benchmarks.stats import summarize

TERMINAL_STATES = ("succeeded", "failed", "revoked")
READY_CELERY_STATES = (b'"SUCCESS"', b'"FAILURE"', b'"REVOKED"')
JOB_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class JobSample:
    """One finished job as a client saw it, with the worker's own stage timings (ms)."""

    latency_ms: float
    worker_ms: dict[str, float]
    server_ms: float  # from the API's submit time to the worker storing the result (no HTTP, no waiting)
    batch: int = 1  # jobs that shared this job's detection forward (a worker batching across jobs)

    @property
    def queue_overhead_ms(self) -> float:
        return self.latency_ms - self.worker_ms["total"]

    @property
    def server_overhead_ms(self) -> float:
        return self.server_ms - self.worker_ms["total"]


@dataclass(frozen=True)
class Target:
    """Where the clients send jobs: the API, its key, the result Redis, and the frames' camera URLs."""

    api: str
    api_key: str
    result_redis_url: str
    frame_urls: Sequence[str]
    wait: str = "notify"
    poll_ms: float = 5.0


class JobFailed(RuntimeError):
    """A benchmark job did not succeed: the figures of a failing system would mean nothing."""


def _date_done_epoch(meta: dict[str, Any]) -> float:
    done = datetime.fromisoformat(str(meta["date_done"]))
    if done.tzinfo is None:
        done = done.replace(tzinfo=UTC)
    return done.timestamp()


class Client:
    """One client thread's connections (an HTTP session and a Redis connection for notifications)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = target.api_key
        self.redis = redis.Redis.from_url(target.result_redis_url)

    def close(self) -> None:
        self.http.close()
        self.redis.close()

    def run_job(self, index: int) -> JobSample:
        target = self.target
        url = target.frame_urls[index % len(target.frame_urls)]
        started = time.perf_counter()
        answer = self.http.post(f"{target.api}/v1/jobs/attendance", json={"url": url}, timeout=30)
        if answer.status_code != 202:
            raise JobFailed(f"POST /v1/jobs/attendance answered {answer.status_code}: {answer.text[:300]}")
        job_id = answer.json()["job_id"]
        if target.wait == "notify":
            self._wait_notified(job_id)
            body = self._get(job_id)
        else:
            body = self._poll(job_id)
        latency_ms = (time.perf_counter() - started) * 1000.0
        if body["state"] != "succeeded":
            raise JobFailed(f"job {job_id} ended {body['state']}: {body.get('error')}")
        meta = json.loads(self.redis.get(f"celery-task-meta-{job_id}") or b"{}")
        server_ms = (_date_done_epoch(meta) - float(body["submitted_at"])) * 1000.0
        batch = int(body["result"].get("batch", {}).get("detect", 1))
        return JobSample(latency_ms, dict(body["result"]["timings_ms"]), server_ms, batch)

    def _get(self, job_id: str) -> dict[str, Any]:
        answer = self.http.get(f"{self.target.api}/v1/jobs/{job_id}", timeout=30)
        if answer.status_code != 200:
            raise JobFailed(f"GET /v1/jobs/{job_id} answered {answer.status_code}: {answer.text[:300]}")
        body: dict[str, Any] = answer.json()
        return body

    def _poll(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            body = self._get(job_id)
            if body["state"] in TERMINAL_STATES:
                return body
            time.sleep(self.target.poll_ms / 1000.0)
        raise JobFailed(f"job {job_id} did not end within {JOB_TIMEOUT_S} s")

    def _wait_notified(self, job_id: str) -> None:
        """Celery's Redis backend publishes every state it stores on the key's channel."""
        key = f"celery-task-meta-{job_id}"
        channel = self.redis.pubsub(ignore_subscribe_messages=True)
        channel.subscribe(key)
        try:
            stored = self.redis.get(key)  # it may have ended before we subscribed
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while not (stored and any(s in stored for s in READY_CELERY_STATES)):
                if time.monotonic() > deadline:
                    raise JobFailed(f"job {job_id} did not end within {JOB_TIMEOUT_S} s")
                message = channel.get_message(timeout=1.0)
                if message is not None:
                    stored = message["data"]
        finally:
            channel.close()


def run_level(target: Target, clients: int, jobs: int) -> tuple[list[JobSample], float]:
    """``jobs`` jobs shared by ``clients`` closed-loop clients; samples and the level's wall time (s)."""
    counter = itertools.count()
    lock = threading.Lock()
    samples: list[JobSample] = []
    failures: list[BaseException] = []

    def client_loop() -> None:
        client = Client(target)
        try:
            while not failures:
                with lock:
                    index = next(counter)
                if index >= jobs:
                    return
                sample = client.run_job(index)
                with lock:
                    samples.append(sample)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            with lock:
                failures.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, name=f"client-{i}") for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise failures[0]
    return samples, wall


def level_report(samples: Sequence[JobSample], wall_s: float, clients: int, workers: int) -> dict[str, Any]:
    stages = sorted({k for s in samples for k in s.worker_ms})
    return {
        "workers": workers,
        "clients": clients,
        "jobs": len(samples),
        "wall_s": round(wall_s, 3),
        "throughput_jobs_per_s": round(len(samples) / wall_s, 3),
        "latency_ms": summarize([s.latency_ms for s in samples]).to_json(),
        "worker_total_ms": summarize([s.worker_ms["total"] for s in samples]).to_json(),
        "queue_overhead_ms": summarize([s.queue_overhead_ms for s in samples]).to_json(),
        "server_overhead_ms": summarize([s.server_overhead_ms for s in samples]).to_json(),
        "worker_stage_median_ms": {
            k: round(summarize([s.worker_ms.get(k, 0.0) for s in samples]).median, 3) for k in stages
        },
    }
