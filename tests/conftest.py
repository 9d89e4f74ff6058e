"""Shared fixtures: real Redis servers, real Celery worker processes, the real Flask app, a loopback camera.

The test process's own environment is pointed at a Redis server the suite starts on a free
loopback port (never the machine's shared one), before anything imports ``celeryconfig``. Worker
(and API) processes are started by ``benchmarks.processes``, which owns their command lines and
readiness checks for the benchmarks and every test suite.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks import processes
from benchmarks.processes import WorkerProcess, free_port, port_open, start_worker
from facebank.passwords import new_key
from tests.cameras.fixtures import (  # noqa: F401 - session fixtures: the real camera servers
    apache_camera,
    fake_rtsp,
    gst_camera,
    lighttpd_camera,
    rtsps_camera,
)
from tests.shared_data import shared_dir

_STATE_DIR = Path(tempfile.mkdtemp(prefix="rollcall-tests-"))
ADMIN_KEY = "test-admin-key-0123456789"
JOBS_KEY = "test-jobs-key-0123456789"


def keyed_client(app: Any, key: str | None = ADMIN_KEY) -> Any:
    """A test client of the real app that sends ``key`` with every request (None: no key)."""
    client = app.test_client()
    if key is not None:
        client.environ_base["HTTP_X_API_KEY"] = key
    return client


def _configure_environment() -> None:
    """Point this process (and every process it starts) at test-only services."""
    port = free_port()
    os.environ.update(
        ROLLCALL_BROKER_URL=f"redis://127.0.0.1:{port}/0",
        ROLLCALL_RESULT_BACKEND=f"redis://127.0.0.1:{port}/1",
        ROLLCALL_DATABASE_URL=f"sqlite:///{_STATE_DIR / 'facebank.db'}",
        ROLLCALL_CAMERA_ALLOW="127.0.0.0/8,::1/128",
        ROLLCALL_LEGACY_WAIT_S="60",
        ROLLCALL_TEST_REDIS_PORT=str(port),
        ROLLCALL_API_KEYS=f"{ADMIN_KEY}:admin,{JOBS_KEY}:jobs",
        # The camera registry's key: the API and every worker of the suite share it, as a deployment's do.
        ROLLCALL_SECRET_KEY=new_key(),
    )


_configure_environment()


@dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail(
                "redis-server is not installed: run `make test` (scripts/ensure_redis.sh installs it)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--databases",
                "64",
                "--dir",
                str(self.directory),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``predicate`` until it is true; fail the test naming ``what`` otherwise."""
    try:
        processes.wait_until(predicate, timeout, what, interval)
    except TimeoutError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(int(os.environ["ROLLCALL_TEST_REDIS_PORT"]), _STATE_DIR / "redis")
    server.start()
    yield server
    server.stop()


class ModuleScopedProcesses:
    """Processes (workers, deployments) that end with the test module that started them.

    A real worker holds 0.6–1.4 GiB; kept for the whole session, the suite's ~25 of them outgrew the
    24 GiB machine CI runs on. Whatever a module starts (through ``system.worker()``, ``worker_factory``
    or ``deploy``) is stopped when that module ends, unless it was started with ``keep=True``: the
    session's main worker, the browser suite's site and the reliability suite's shared deployment, which
    serve many modules.
    """

    def __init__(self) -> None:
        self._running: list[tuple[Any, bool]] = []  # (process with .stop(), kept for the session)

    def add(self, process: Any, keep: bool) -> None:
        self._running.append((process, keep))

    def mark(self) -> int:
        return len(self._running)

    def stop_since(self, mark: int) -> None:
        """Stop what was started after ``mark`` and not kept; kept ones stay in the list."""
        ended = [process for process, keep in self._running[mark:] if not keep]
        self._running[mark:] = [(process, keep) for process, keep in self._running[mark:] if keep]
        for process in ended:
            process.stop()

    def stop_all(self) -> None:
        self.stop_since(0)
        for process, _ in self._running:
            process.stop()
        self._running.clear()


MODULE_PROCESSES = ModuleScopedProcesses()


@pytest.fixture(scope="module", autouse=True)
def _processes_end_with_their_module() -> Iterator[None]:
    """Stop the workers and deployments this module started (see ``ModuleScopedProcesses``)."""
    mark = MODULE_PROCESSES.mark()
    yield
    MODULE_PROCESSES.stop_since(mark)


@pytest.fixture(scope="session")
def worker_factory(redis_server: RedisServer) -> Iterator[Any]:
    """Start real worker processes; each ends with the module that started it (``keep``: the session)."""

    def start(
        name: str,
        wait: bool = True,
        pool: str = "solo",
        concurrency: int = 1,
        keep: bool = False,
        **env: str,
    ) -> WorkerProcess:
        worker = start_worker(name, {**os.environ, **env}, _STATE_DIR, pool=pool, concurrency=concurrency)
        MODULE_PROCESSES.add(worker, keep)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    MODULE_PROCESSES.stop_all()


@pytest.fixture(scope="session")
def worker(worker_factory: Any) -> WorkerProcess:
    """The session's main worker (real models, real Redis)."""
    return worker_factory("main", keep=True)


def migrated_app(settings: Any = None) -> Any:
    """The real app (``settings``: default, the environment's) on a facebank migrated first.

    As every start-up path does: ``python -m webapi.cli migrate`` runs before the API, which never migrates.
    """
    from facebank.db import upgrade
    from settings import get_settings
    from webapi import create_app

    settings = settings or get_settings()
    upgrade(settings.database_url)
    return create_app(settings)


@pytest.fixture(scope="session")
def app(redis_server: RedisServer) -> Any:
    return migrated_app()


@pytest.fixture()
def client(app: Any) -> Any:
    """The real app, called with the admin key."""
    return keyed_client(app)


class _CameraHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the shared folder; ``/slow/<seconds>/<path>`` waits first (a busy camera)."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.startswith("/slow/"):
            _, _, seconds, rest = self.path.split("/", 3)
            time.sleep(float(seconds))
            self.path = "/" + rest
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="session")
def camera() -> Iterator[str]:
    """A loopback HTTP "camera" serving the shared folder: ``{camera}/oracles/.../x.jpg``."""
    handler = functools.partial(_CameraHandler, directory=str(shared_dir()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def wait_for_job(client: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/<id>`` until the job ends; return the final body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").get_json()
        if body["state"] in ("succeeded", "failed", "revoked"):
            return body
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not finish within {timeout} s")


@dataclass
class System:
    """An isolated rollcall: its own Redis databases, its own facebank file, its own workers."""

    name: str
    env: dict[str, str]
    app: Any
    start_worker: Any

    def client(self, key: str | None = ADMIN_KEY) -> Any:
        return keyed_client(self.app, key)

    def worker(
        self,
        suffix: str = "w1",
        wait: bool = True,
        pool: str = "solo",
        concurrency: int = 1,
        keep: bool = False,
    ) -> WorkerProcess:
        """A real worker of this system; it ends with the test module, or the session when ``keep``."""
        worker: WorkerProcess = self.start_worker(
            f"{self.name}-{suffix}", wait=wait, pool=pool, concurrency=concurrency, keep=keep, **self.env
        )
        return worker


@pytest.fixture(scope="session")
def system_factory(redis_server: RedisServer, worker_factory: Any) -> Any:
    """Build isolated systems (at most 31: the test Redis has 64 databases; the default system uses 0, 1)."""
    from settings import Settings

    used = itertools.count(1)

    def make(name: str, **extra_env: str) -> System:
        n = next(used)
        env = {
            "ROLLCALL_BROKER_URL": f"{redis_server.url}/{2 * n}",
            "ROLLCALL_RESULT_BACKEND": f"{redis_server.url}/{2 * n + 1}",
            "ROLLCALL_DATABASE_URL": f"sqlite:///{_STATE_DIR / f'{name}.db'}",
            **extra_env,
        }
        settings = Settings(**{key.removeprefix("ROLLCALL_").lower(): value for key, value in env.items()})
        return System(name, env, migrated_app(settings), worker_factory)

    return make
