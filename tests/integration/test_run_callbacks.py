"""Under ``make run`` (scripts/run.sh), callback deliveries never hold a model job's slot.

Ten jobs call back a receiver that accepts connections and never answers; each delivery holds its
connection open for the whole callback timeout. A detect job submitted after them must finish while
every one of those deliveries still hangs: it never waited for a callback to give up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import free_port, wait_until
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration
KEY = "run-script-admin-key-0123456789"
FRAME = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


class SilentReceiver:
    """Accepts connections, reads what comes, never answers; counts the connections the sender closed."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.opened = 0
        self.closed = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.opened += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                pass
        with self._lock:
            self.closed += 1


@pytest.fixture()
def receiver() -> Iterator[SilentReceiver]:
    silent = SilentReceiver()
    yield silent
    silent.server.close()


def test_callbacks_to_a_silent_receiver_never_hold_a_model_job(
    tmp_path: Any, receiver: SilentReceiver, camera: str
) -> None:
    redis_port, api_port, flower_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROLLCALL_")}
    env.update(
        ROLLCALL_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        ROLLCALL_RESULT_BACKEND=f"redis://127.0.0.1:{redis_port}/1",
        ROLLCALL_DATABASE_URL=f"sqlite:///{tmp_path / 'facebank.db'}",
        ROLLCALL_CAMERA_ALLOW="127.0.0.0/8",
        ROLLCALL_API_PORT=str(api_port),
        ROLLCALL_FLOWER_PORT=str(flower_port),
        ROLLCALL_WORKER_METRICS_PORT=str(metrics_port),
        ROLLCALL_API_KEYS=f"{KEY}:admin",
        ROLLCALL_CALLBACK_SECRET="run-script-callback-secret",
        ROLLCALL_CALLBACK_TIMEOUT_S="60",
    )
    log_path = tmp_path / "run.log"
    process = subprocess.Popen(
        ["scripts/run.sh"], cwd=REPO_ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    headers = {"X-API-Key": KEY}

    def job(body: dict[str, Any]) -> str:
        answer = requests.post(f"{api}/v1/jobs/detect", json=body, headers=headers, timeout=10)
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["job_id"]
        return job_id

    def state(job_id: str) -> str:
        result: str = requests.get(f"{api}/v1/jobs/{job_id}", headers=headers, timeout=10).json()["state"]
        return result

    try:

        def ready() -> bool:
            try:
                return requests.get(f"{api}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(lambda: ready() or process.poll() is not None, 240, "run.sh to be ready")
        assert process.poll() is None, log_path.read_text()[-3000:]
        frame = {"url": f"{camera}/{FRAME}"}
        callback = f"http://127.0.0.1:{receiver.port}/hook"
        called_back = [job({**frame, "callback_url": callback}) for _ in range(10)]
        wait_until(lambda: all(state(j) == "succeeded" for j in called_back), 120, "the ten jobs")
        wait_until(lambda: receiver.opened >= 2, 60, "callback deliveries to reach the receiver")

        after = job(frame)
        wait_until(lambda: state(after) in ("succeeded", "failed"), 120, "the detect job after them")
        assert state(after) == "succeeded"
        assert receiver.closed == 0, "a model job waited for a callback delivery to give up"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
