"""The reliability suite's rig: its own Redis, isolated deployments, a camera that holds a frame, the report.

Every fault here is real: processes are killed with signals, Redis is stopped, TCP connections
are cut. Each deployment gets its own Redis databases (on a Redis server only this suite uses)
and its own facebank, so a fault never leaks into another test. Figures each test measured go
into ``var/reliability/report.json`` at the end of the session.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks import processes
from benchmarks.processes import ApiProcess, WorkerProcess, start_worker
from settings import Settings
from tests.conftest import ADMIN_KEY, MODULE_PROCESSES, RedisServer, free_port, keyed_client, migrated_app
from tests.reliability.rabbitmq import RabbitServer
from tests.shared_data import REPO_ROOT, shared_dir

STATE_DIR = Path(tempfile.mkdtemp(prefix="rollcall-reliability-"))
REPORT_PATH = REPO_ROOT / "var" / "reliability" / "report.json"
SCENES = "oracles/mtcnn_facenet_pytorch/images"
SMALL_FRAME = f"{SCENES}/obama_small.jpg"
FINAL_STATES = ("succeeded", "failed", "revoked")


# --- the report ---
@pytest.fixture(scope="session")
def report() -> Iterator[dict[str, Any]]:
    """Sections of figures, one per fault tried; written as JSON when the session ends."""
    figures: dict[str, Any] = {}
    started = time.time()
    yield figures
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "suite_seconds": round(time.time() - started, 1),
        "machine": {"cpus": os.cpu_count()},
        **figures,
    }
    REPORT_PATH.write_text(json.dumps(document, indent=2) + "\n")


# --- processes ---
def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid``, read from /proc (a prefork worker's pool processes)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked: it is nobody's child any more
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _status_mib(pid: int, field: str) -> float:
    """One ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), in MiB."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match is not None, f"no {field} for process {pid}"
    return int(match.group(1)) / 1024


def rss_mib(pid: int) -> float:
    """``pid``'s resident memory now (VmRSS), in MiB."""
    return _status_mib(pid, "VmRSS")


def peak_rss_mib(pid: int) -> float:
    """The highest resident memory ``pid`` had (VmHWM, since it started or ``reset_peak_rss``), in MiB."""
    return _status_mib(pid, "VmHWM")


def reset_peak_rss(pid: int) -> None:
    """Start ``pid``'s VmHWM again from its current memory (Linux: ``5`` to ``/proc/PID/clear_refs``),
    so that the next ``peak_rss_mib`` is the peak of what ran since."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def successes(job_id: str, *workers: WorkerProcess) -> int:
    """How many times a job finished successfully, from the log line each job leaves (``tasks.joblog``)."""
    return sum(
        1
        for worker in workers
        for line in worker.log().splitlines()
        if f'"job_id": "{job_id}"' in line and '"outcome": "succeeded"' in line
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --- deployments ---
@dataclass
class Deployment:
    """One isolated rollcall: its Redis databases, its facebank, its API app and its worker processes."""

    name: str
    env: dict[str, str]
    settings: Settings
    app: Any
    workers: list[WorkerProcess] = field(default_factory=list)

    def client(self, key: str | None = ADMIN_KEY) -> Any:
        return keyed_client(self.app, key)

    def start_worker(self, suffix: str, pool: str = "solo", wait: bool = True) -> WorkerProcess:
        worker = start_worker(f"{self.name}-{suffix}", {**os.environ, **self.env}, STATE_DIR, pool=pool)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(signal.SIGTERM, timeout=15)


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a process started with ``env`` on top of this process's environment reads."""
    return Settings(**{key.removeprefix("ROLLCALL_").lower(): value for key, value in env.items()})


@pytest.fixture(scope="session")
def reliability_redis() -> Iterator[RedisServer]:
    """A Redis server for this suite's deployments, with room for many pairs of databases."""
    server = RedisServer(free_port(), STATE_DIR / "redis", extra_args=["--databases", "64"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def deploy(reliability_redis: RedisServer) -> Iterator[Any]:
    """Build a deployment: ``deploy(name, redis_url=None, keep=False, **ROLLCALL_env)``.

    A deployment's workers stop when the test module that made it ends, or with the session when ``keep``
    (``tests.conftest.ModuleScopedProcesses``).
    """
    numbers = itertools.count(1)
    made: list[Deployment] = []

    def make(name: str, redis_url: str | None = None, keep: bool = False, **extra_env: str) -> Deployment:
        if redis_url is None:
            n = next(numbers)
            broker, backend = f"{reliability_redis.url}/{2 * n}", f"{reliability_redis.url}/{2 * n + 1}"
        else:
            broker, backend = f"{redis_url}/0", f"{redis_url}/1"
        env = {
            "ROLLCALL_BROKER_URL": broker,
            "ROLLCALL_RESULT_BACKEND": backend,
            "ROLLCALL_DATABASE_URL": f"sqlite:///{STATE_DIR / f'{name}.db'}",
            **extra_env,
        }
        settings = settings_of(env)
        deployment = Deployment(name, env, settings, migrated_app(settings))
        made.append(deployment)
        MODULE_PROCESSES.add(deployment, keep)
        return deployment

    yield make
    for deployment in made:
        deployment.stop()


@pytest.fixture(scope="session")
def rabbitmq_server() -> Iterator[Callable[[str], RabbitServer]]:
    """Start a RabbitMQ node of the suite's own: ``rabbitmq_server(name)``; all are stopped at the end."""
    made: list[RabbitServer] = []

    def make(name: str) -> RabbitServer:
        server = RabbitServer(STATE_DIR / f"rabbitmq-{name}")
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()


BROKERS = ("redis", "rabbitmq")


def broker_env(broker: str, name: str, rabbitmq_server: Callable[[str], RabbitServer]) -> dict[str, str]:
    """The environment that points a deployment's jobs at ``broker``; results stay in Redis either way."""
    if broker == "redis":
        return {}
    assert broker == "rabbitmq", broker
    return {"ROLLCALL_BROKER_URL": rabbitmq_server(name).url}


@pytest.fixture(scope="session")
def shared(deploy: Any) -> Deployment:
    """One solo worker with short camera budgets (1 s connect + 2 s read): camera faults, load, security."""
    deployment: Deployment = deploy(
        "shared",
        keep=True,
        ROLLCALL_CAMERA_CONNECT_TIMEOUT_S="1",
        ROLLCALL_CAMERA_READ_TIMEOUT_S="2",
        ROLLCALL_CAMERA_RETRIES="1",
        ROLLCALL_MAX_UPLOAD_BYTES="1000000",
    )
    deployment.start_worker("w1")
    return deployment


# --- jobs ---
def submit(client: Any, kind: str, body: dict[str, Any]) -> str:
    response = client.post(f"/v1/jobs/{kind}", json=body)
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id: str = response.get_json()["job_id"]
    return job_id


def state_of(client: Any, job_id: str) -> str:
    state: str = client.get(f"/v1/jobs/{job_id}").get_json()["state"]
    return state


# --- cameras ---
class _HoldingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the shared folder; ``/hold/<seconds>/<token>/<path>`` waits the first time a token is asked."""

    server: _HoldingServer

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.startswith("/hold/"):
            _, _, seconds, token, rest = self.path.split("/", 4)
            if self.server.first_request(token):
                time.sleep(float(seconds))
            self.path = "/" + rest
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):
            # Expected: the worker fetching this frame was killed on purpose.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the test asserts on ``requests_for`` instead."""


class _HoldingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def first_request(self, token: str) -> bool:
        with self._lock:
            self.counts[token] = self.counts.get(token, 0) + 1
            return self.counts[token] == 1


@dataclass
class HoldingCamera:
    """A camera whose frame can hold one job mid-flight, and comes at once when the job is redelivered."""

    server: _HoldingServer
    base: str
    _tokens: Iterator[int] = field(default_factory=itertools.count)

    def held_url(self, seconds: float, path: str = SMALL_FRAME) -> tuple[str, str]:
        """A URL whose first fetch waits ``seconds``; returns (url, token)."""
        token = f"t{next(self._tokens)}"
        return f"{self.base}/hold/{seconds:g}/{token}/{path}", token

    def url(self, path: str = SMALL_FRAME) -> str:
        return f"{self.base}/{path}"

    def requests_for(self, token: str) -> int:
        return self.server.counts.get(token, 0)


@pytest.fixture(scope="session")
def holding_camera() -> Iterator[HoldingCamera]:
    server = _HoldingServer(functools.partial(_HoldingHandler, directory=str(shared_dir())))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield HoldingCamera(server, f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


# --- a real HTTP API process ---
def start_api(deployment: Deployment, workers: int = 2, threads: int = 8) -> ApiProcess:
    """``gunicorn 'webapi:create_app()'`` of ``deployment`` on a loopback port, for clients of real HTTP."""
    return processes.start_api(
        f"{deployment.name}-api",
        {**os.environ, **deployment.env},
        STATE_DIR,
        workers=workers,
        threads=threads,
        options=("--access-logfile", "-", "--log-level", "debug"),
        timeout=30,
    )


@pytest.fixture(scope="session")
def shared_api(shared: Deployment) -> Iterator[ApiProcess]:
    api = start_api(shared)
    yield api
    api.stop(timeout=15)
