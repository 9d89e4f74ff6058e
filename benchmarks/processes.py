"""Real processes for the benchmarks and the test suites: Redis, Celery workers, the API, a loopback camera.

The one place that knows how to start a worker (``celery -A tasks worker``: queues, pool, concurrency,
node name) and the API (``python -m webapi.cli migrate``, then gunicorn), when each is ready, and how
to stop it by its PID. ``benchmarks`` and ``tests`` (``tests/conftest.py``, ``tests/ops``,
``tests/reliability``) start theirs here; the caller chooses the environment and the log folder.
Readiness is polled, never slept for.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.frames import REPO_ROOT

# Every queue of the default settings (contract.routing): interactive and bulk model jobs, callbacks.
ALL_QUEUES = ("rollcall.models", "rollcall.bulk", "rollcall.frames", "rollcall.io")
WORKER_READY_TIMEOUT_S = 120.0
MIGRATE_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def rss_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in KiB, from ``/proc/<pid>/status``."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


@dataclass
class ManagedProcess:
    """A child process run from the repository root, its output in a log file; stopped by its own PID."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def wait_for(self, ready: Callable[[], bool], timeout: float) -> None:
        """Wait for ``ready``; if the process exits first, raise with the end of its log."""
        wait_until(lambda: ready() or not self.alive(), timeout, f"{self.name} to be ready")
        if not self.alive():
            raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Send ``sig`` (SIGTERM: a warm shutdown), then SIGKILL after ``timeout`` seconds."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- workers ---
def worker_argv(
    name: str,
    pool: str = "solo",
    concurrency: int = 1,
    queues: Sequence[str] = ALL_QUEUES,
    options: Sequence[str] = (),
    module: str = "celery",
) -> list[str]:
    """``python -m celery -A tasks worker`` as node ``name@<host>`` (``module``: celery, or a wrapper)."""
    return [
        sys.executable,
        "-m",
        module,
        "-A",
        "tasks",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "-Q",
        ",".join(queues),
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        # No handshake with the other workers at start: faster, and no test's worker waits on another's.
        "--without-mingle",
        "--without-gossip",
        *options,
    ]


@dataclass
class WorkerProcess(ManagedProcess):
    """A real ``celery -A tasks worker`` process; ready once it consumes and its models are loaded."""

    def ready(self) -> bool:
        text = self.log_path.read_bytes() if self.log_path.exists() else b""
        return b"ready." in text and b"models loaded" in text

    def wait_ready(self, timeout: float = WORKER_READY_TIMEOUT_S) -> None:
        self.wait_for(self.ready, timeout)

    @property
    def node(self) -> str:
        """The Celery node name it answers to (``--hostname name@%h``)."""
        return f"{self.name}@{socket.gethostname()}"


def start_worker(
    name: str, env: dict[str, str], log_dir: Path, pool: str = "solo", concurrency: int = 1
) -> WorkerProcess:
    """Start one worker of every queue, logging to ``log_dir/name.log``; ``wait_ready`` waits for it.

    For other queues, options or a wrapper of celery, build the ``WorkerProcess`` from ``worker_argv``.
    """
    worker = WorkerProcess(name, worker_argv(name, pool, concurrency), env, log_dir / f"{name}.log")
    worker.start()
    return worker


# --- stream readers ---
LIVE_QUEUE = "rollcall.live"  # the default ROLLCALL_LIVE_QUEUE: a worker consuming it is a stream reader


@dataclass
class ReaderProcess(WorkerProcess):
    """A stream reader: ``celery -A tasks worker -Q rollcall.live``; ready once its reader runs."""

    def ready(self) -> bool:
        text = self.log_path.read_bytes() if self.log_path.exists() else b""
        return b"ready." in text and b"stream reader" in text and b"started" in text


def start_reader(name: str, env: dict[str, str], log_dir: Path) -> ReaderProcess:
    """Start one stream reader (solo pool, the live queue only), logging to ``log_dir/name.log``."""
    reader = ReaderProcess(name, worker_argv(name, queues=(LIVE_QUEUE,)), env, log_dir / f"{name}.log")
    reader.start()
    return reader


# --- the API ---
def migrate(env: dict[str, str]) -> None:
    """``python -m webapi.cli migrate``: every start-up path runs it before the API, which never migrates."""
    done = subprocess.run(
        [sys.executable, "-m", "webapi.cli", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"facebank migrate exited with {done.returncode}:\n{done.stderr[-4000:]}")


@dataclass
class ApiProcess(ManagedProcess):
    """``gunicorn 'webapi:create_app()'`` on a loopback port."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # still booting its workers
            return False


def api_argv(port: int, workers: int = 1, threads: int = 8, options: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        *options,
        "webapi:create_app()",
    ]


def start_api(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    workers: int = 1,
    threads: int = 8,
    options: Sequence[str] = (),
    timeout: float = 60,
) -> ApiProcess:
    """Migrate the facebank, start the API on a free loopback port, and wait until ``/healthz`` answers.

    It logs to ``log_dir/name.log``; one that does not answer within ``timeout`` seconds is stopped.
    """
    migrate(env)
    port = free_port()
    api = ApiProcess(name, api_argv(port, workers, threads, options), env, log_dir / f"{name}.log", port=port)
    api.start()
    try:
        api.wait_for(api.answers, timeout)
    except BaseException:
        api.stop()
        raise
    return api


def deployment_env(redis_port: int, workdir: Path, api_keys: str, database: int = 0) -> dict[str, str]:
    """The environment of one benchmark deployment (API and workers alike): broker in Redis database
    ``database`` and results in the next, a SQLite facebank in ``workdir``, loopback cameras allowed, API
    keys ``api_keys`` (``key:role,...``) required."""
    return {
        **os.environ,
        "ROLLCALL_BROKER_URL": f"redis://127.0.0.1:{redis_port}/{database}",
        "ROLLCALL_RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/{database + 1}",
        "ROLLCALL_DATABASE_URL": f"sqlite:///{workdir / 'facebank.db'}",
        "ROLLCALL_CAMERA_ALLOW": "127.0.0.0/8",
        "ROLLCALL_API_KEYS": api_keys,
        "ROLLCALL_AUTH_DISABLED": "false",
    }


# --- Redis and a camera, for the benchmarks (the test suites keep their own Redis: tests.conftest) ---
def start_redis(directory: Path) -> tuple[ManagedProcess, int]:
    """A private ``redis-server`` on a free loopback port (never the machine's shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed: run `make setup` (scripts/ensure_redis.sh)")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]
    redis = ManagedProcess("redis-server", argv, {}, directory / "redis.log")
    redis.start()
    redis.wait_for(lambda: port_open(port), timeout=15)
    return redis, port


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@dataclass
class LoopbackCamera:
    """An HTTP "camera" on loopback serving the files of ``directory`` (a thread of this process)."""

    directory: Path
    server: http.server.ThreadingHTTPServer | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> str:
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="camera", daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
