"""Real processes for the system benchmarks: Redis, Celery workers, the API, and a loopback camera.

Each process is started on a free loopback port with its own log file and stopped by its PID;
readiness is polled, never slept for. (``tests/conftest.py`` does the same for the test suite; the
benchmarks keep their own copy so they never import ``tests``.)
"""

from __future__ import annotations

import functools
import http.server
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
    """A child process with a log file; stopped with SIGTERM (then SIGKILL) by its own PID."""

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

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        """Wait for ``ready``; if the process dies first, raise with the end of its log."""
        wait_until(lambda: ready() or not self.alive(), timeout, f"{self.name} to be ready")
        if not self.alive():
            raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


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
    redis.wait_ready(lambda: port_open(port), timeout=15)
    return redis, port


def start_worker(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    extra: Sequence[str] = (),
    pool: str = "solo",
    concurrency: int = 1,
) -> ManagedProcess:
    """One ``celery -A tasks worker`` process, solo pool by default (ready once its models are loaded)."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
        *extra,
    ]
    worker = ManagedProcess(name, argv, env, log_dir / f"{name}.log")
    worker.start()
    return worker


def worker_ready(worker: ManagedProcess) -> bool:
    text = worker.log_path.read_bytes() if worker.log_path.exists() else b""
    return b"ready." in text and b"models loaded" in text


def start_api(env: dict[str, str], log_dir: Path, threads: int) -> tuple[ManagedProcess, str]:
    """The API under gunicorn (one process, ``threads`` threads) on a free loopback port."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        str(threads),
        "--timeout",
        "60",
        "webapi:create_app()",
    ]
    api = ManagedProcess("api", argv, env, log_dir / "api.log")
    api.start()
    base = f"http://127.0.0.1:{port}"
    api.wait_ready(functools.partial(_answers, f"{base}/healthz"), timeout=60)
    return api, base


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


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
