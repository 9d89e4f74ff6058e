"""Flower (``celery -A tasks flower``) monitors the workers through the same broker and configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import System, free_port
from tests.ops.conftest import FRAME, OpsWorker, run_detect, sample, scrape, wait_for
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration
AUTH = ("ops", "flower-test-password")


@dataclass
class Flower:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=10, **kwargs)

    def up(self) -> bool:
        try:
            return self.get("/healthcheck").status_code == 200
        except requests.ConnectionError:
            return False


@pytest.fixture()
def flower(ops_system: System, tmp_path: Path) -> Iterator[Flower]:
    """A real Flower on a free loopback port, password from FLOWER_BASIC_AUTH as in docker/compose.yaml."""
    port = free_port()
    log_path = tmp_path / "flower.log"
    env = {**os.environ, **ops_system.env, "FLOWER_BASIC_AUTH": ":".join(AUTH)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1",
             f"--port={port}"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Flower(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_for(lambda: server.up() or process.poll() is not None, 60, "Flower to answer /healthcheck")
        assert process.poll() is None, f"Flower exited:\n{log_path.read_text()[-3000:]}"
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_flower_lists_the_worker_and_its_finished_jobs(
    ops_system: System, ops_worker: OpsWorker, flower: Flower, camera: str
) -> None:
    assert flower.get("/api/workers").status_code == 401, "the API needs the password"
    workers = wait_for(
        lambda: (
            (answer := flower.get("/api/workers", params={"refresh": 1}, auth=AUTH).json()).get(
                ops_worker.node
            )
            and answer
        ),
        30,
        "Flower to list the worker",
    )
    assert workers[ops_worker.node]["stats"]["pool"]["implementation"].endswith("solo:TaskPool")

    client = ops_system.client()
    jobs = [run_detect(client, {"url": f"{camera}/{FRAME}"}) for _ in range(2)]
    jobs.append(run_detect(client, {"url": f"{camera}/no/such/frame.jpg"}))
    assert [job["state"] for job in jobs] == ["succeeded", "succeeded", "failed"]

    def seen() -> dict[str, Any] | None:
        tasks: dict[str, Any] = flower.get("/api/tasks", auth=AUTH).json()
        finished = all(tasks.get(job["job_id"], {}).get("state") in ("SUCCESS", "FAILURE") for job in jobs)
        return tasks if finished else None

    tasks = wait_for(seen, 30, "Flower to see the three jobs finish")
    assert [tasks[job["job_id"]]["name"] for job in jobs] == ["rollcall.models.detect"] * 3
    assert [tasks[job["job_id"]]["state"] for job in jobs] == ["SUCCESS", "SUCCESS", "FAILURE"]
    assert all(tasks[job["job_id"]]["worker"] == ops_worker.node for job in jobs)

    metrics = scrape(f"{flower.url}/metrics")
    labels = {"task": "rollcall.models.detect", "worker": ops_worker.node}
    assert sample(metrics, "flower_events_total", type="task-succeeded", **labels) >= 2
    assert sample(metrics, "flower_events_total", type="task-failed", **labels) >= 1
    assert sample(metrics, "flower_task_runtime_seconds_count", **labels) >= 2


CAMERA_PASSWORD = "Fl0werCamPassw0rd"


def test_flower_and_the_result_store_never_see_camera_passwords_or_uploads(
    ops_system: System, ops_worker: OpsWorker, flower: Flower, camera: str
) -> None:
    """Job arguments shown by Flower are redacted, and the result store keeps no copy of them."""
    import base64

    import redis

    from tests.shared_data import shared_dir

    client = ops_system.client()
    secret_url = f"{camera}/{FRAME}".replace("http://", f"http://operator:{CAMERA_PASSWORD}@")
    upload = base64.b64encode((shared_dir() / FRAME).read_bytes()).decode()
    jobs = [run_detect(client, {"url": secret_url}), run_detect(client, {"image_b64": upload})]
    assert [job["state"] for job in jobs] == ["succeeded", "succeeded"], jobs

    def seen() -> dict[str, Any] | None:
        tasks: dict[str, Any] = flower.get("/api/tasks", auth=AUTH).json()
        return tasks if all(tasks.get(job["job_id"], {}).get("state") == "SUCCESS" for job in jobs) else None

    tasks = wait_for(seen, 30, "Flower to see both jobs finish")
    shown = [str(tasks[job["job_id"]].get("args")) + str(tasks[job["job_id"]].get("kwargs")) for job in jobs]
    assert "127.0.0.1" in shown[0], "the camera is still named by host and port"
    assert CAMERA_PASSWORD not in shown[0] and "operator" not in shown[0]
    assert upload[:64] not in shown[1] and len(shown[1]) < 1000

    store = redis.Redis.from_url(ops_system.env["ROLLCALL_RESULT_BACKEND"])
    for job in jobs:
        stored = store.get(f"celery-task-meta-{job['job_id']}") or b""
        assert b'"status": "SUCCESS"' in stored
        assert CAMERA_PASSWORD.encode() not in stored and upload[:64].encode() not in stored
