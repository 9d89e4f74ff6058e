"""Operations fixtures: real workers (solo or prefork) of isolated systems, their metrics, their node names.

Two systems keep the suites apart: ``ops`` has one solo worker for the whole package (metrics on a
free loopback port), and ``ops-lifecycle`` has only the workers a test starts and stops itself, so
that nothing else consumes its queue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.processes import WorkerProcess, worker_argv
from tests.conftest import System, free_port, wait_for_job
from tests.shared_data import REPO_ROOT

FRAME = "oracles/mtcnn_facenet_pytorch/images/two_people.jpg"  # two faces


@dataclass
class OpsWorker(WorkerProcess):
    """A worker that may serve its metrics on a loopback port."""

    metrics_port: int = 0

    @property
    def metrics_url(self) -> str:
        assert self.metrics_port, "this worker was started without a metrics port"
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


class Workers:
    """Starts workers of a system; ``stop_all`` stops each one by its PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[OpsWorker] = []

    def start(
        self,
        system: System,
        suffix: str,
        pool: str = "solo",
        concurrency: int = 1,
        metrics: bool = False,
        wait: bool = True,
        options: tuple[str, ...] = (),
        module: str = "celery",
        **env: str,
    ) -> OpsWorker:
        port = free_port() if metrics else 0
        if metrics:
            env = {**env, "ROLLCALL_WORKER_METRICS_PORT": str(port)}
            env["ROLLCALL_WORKER_METRICS_ADDR"] = "127.0.0.1"
        name = f"{system.name}-{suffix}"
        worker = OpsWorker(
            name,
            worker_argv(name, pool, concurrency, options=options, module=module),
            {**os.environ, **system.env, **env},
            self.log_dir / f"{name}.log",
            metrics_port=port,
        )
        worker.start()
        self.started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture(scope="package")
def ops_system(system_factory: Any) -> System:
    system: System = system_factory("ops")
    return system


@pytest.fixture(scope="package")
def lifecycle_system(system_factory: Any) -> System:
    system: System = system_factory("ops-lifecycle")
    return system


@pytest.fixture(scope="package")
def ops_worker(ops_system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsWorker]:
    """The ``ops`` system's one worker: solo (as on a GPU), serving /metrics on loopback."""
    workers = Workers(tmp_path_factory.mktemp("ops-workers"))
    worker = workers.start(ops_system, "solo", metrics=True)
    yield worker
    workers.stop_all()


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Workers this test starts; all are stopped when it ends."""
    started = Workers(tmp_path)
    yield started
    started.stop_all()


def submit_detect(client: Any, body: dict[str, Any]) -> str:
    response = client.post("/v1/jobs/detect", json=body)
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def run_detect(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    return wait_for_job(client, submit_detect(client, body))


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    """Every sample of a Prometheus text endpoint, keyed by (name, labels)."""
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def health(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tasks.health`` as a probe would."""
    return subprocess.run(
        [sys.executable, "-m", "tasks.health", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
