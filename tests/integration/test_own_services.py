"""Issue 26's attack on the stack through its own services: a jobs key aiming cameras and callbacks at Flower.

A real Flower with its HTTP API open (as ``make run`` served it before the fix: loopback,
``FLOWER_UNAUTHENTICATED_API=true``), a real worker, the real API, loopback in the camera allowlist as
the README's "Try it" has it. Before the fix, a callback to ``/api/worker/shutdown/<worker>`` stopped the
worker and a camera URL at ``/api/workers?refresh=true`` was fetched; now every path that connects
(jobs, callbacks at submission and at delivery, the page's camera proxy, sessions) refuses Flower's
address and port, and a jobs key's results no longer name the worker that Flower's API would take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from contract.jobs import CALLBACK
from tests.conftest import JOBS_KEY, System, WorkerProcess, free_port, wait_for_job, wait_until
from tests.integration.callback_receiver import CallbackReceiver, callback_receiver
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration
SECRET = "own-services-callback-secret-0123"
PHOTO = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


@dataclass
class OpenFlower:
    """Flower with an unauthenticated API: what the attacks need, and what makes them real here."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_seen(self) -> int:
        """Requests Flower logged (tornado logs each at INFO); none may come from a job."""
        return self.log.read_text().count(" /api/")


@dataclass
class Attacked:
    system: System
    worker: WorkerProcess
    flower: OpenFlower


@pytest.fixture(scope="module")
def attacked(system_factory: Any, tmp_path_factory: Any) -> Iterator[Attacked]:
    port = free_port()
    flower_url = f"http://127.0.0.1:{port}/api/workers?refresh=true"
    system = system_factory(
        "ownservices",
        ROLLCALL_CAMERA_ALLOW="127.0.0.0/8,::1/128",
        ROLLCALL_SERVICE_ENDPOINTS=f"127.0.0.1:{port}",  # as make run names its Flower
        ROLLCALL_CALLBACK_SECRET=SECRET,
        ROLLCALL_UI_CAMERAS=f"flower={flower_url}",
    )
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    env = {**os.environ, **system.env, "FLOWER_UNAUTHENTICATED_API": "true", "FLOWER_LOGGING": "info"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "flower", "--address=127.0.0.1",
             f"--port={port}"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    flower = OpenFlower(port, process, log)
    worker = system.worker()
    try:

        def flower_up() -> bool:
            try:
                return requests.get(flower.url("/healthcheck"), timeout=5).status_code == 200
            except requests.ConnectionError:
                return process.poll() is not None

        wait_until(flower_up, 60, "Flower to answer")
        assert process.poll() is None, log.read_text()[-2000:]
        # The attack's precondition: Flower's API really is open to anyone on this machine.
        assert requests.get(flower.url("/api/workers"), timeout=10).status_code == 200
        yield Attacked(system, worker, flower)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_camera_url_at_flowers_api_fails_without_reaching_flower(attacked: Attacked) -> None:
    client = attacked.system.client(JOBS_KEY)
    seen = attacked.flower.requests_seen()
    for url in (
        attacked.flower.url("/api/workers?refresh=true"),
        f"http://localhost:{attacked.flower.port}/api/workers",
        f"http://[::ffff:127.0.0.1]:{attacked.flower.port}/api/workers",
    ):
        job = client.post("/v1/jobs/detect", json={"url": url}).get_json()["job_id"]
        final = wait_for_job(client, job)
        assert final["state"] == "failed", final
        assert final["error"]["code"] == "camera_not_allowed", final
        assert "rollcall's own services" in final["error"]["message"]
    assert attacked.flower.requests_seen() == seen, "a job's fetch reached Flower"


def test_callbacks_to_flowers_control_api_are_refused_at_submission(attacked: Attacked) -> None:
    client = attacked.system.client(JOBS_KEY)
    node = attacked.worker.node
    for path in (f"/api/worker/shutdown/{node}", f"/api/worker/pool/shrink/{node}"):
        body = {"url": f"http://127.0.0.1:9/{PHOTO}", "callback_url": attacked.flower.url(path)}
        refused = client.post("/v1/jobs/detect", json=body)
        assert refused.status_code == 403, refused.get_json()
        assert refused.get_json()["error"]["code"] == "callback_not_allowed"


def test_a_callback_at_flower_sent_past_the_api_is_refused_at_delivery_and_the_worker_lives(
    attacked: Attacked, camera: str
) -> None:
    """A callback message put on the queue directly (a URL the API would refuse) meets the same rule."""
    celery = attacked.system.app.extensions["rollcall.jobs"].celery
    shutdown = attacked.flower.url(f"/api/worker/shutdown/{attacked.worker.node}")
    celery.send_task(CALLBACK, kwargs={"url": shutdown, "payload": {"job_id": "attack"}})
    wait_until(
        lambda: "callback for job attack refused: callback_not_allowed" in attacked.worker.log(),
        60,
        "the worker to refuse the callback",
    )
    assert "rollcall's own services" in attacked.worker.log()
    client = attacked.system.client()
    job = client.post("/v1/jobs/detect", json={"url": f"{camera}/{PHOTO}"}).get_json()["job_id"]
    assert wait_for_job(client, job)["state"] == "succeeded", "the worker is still there and serving"
    assert attacked.worker.alive()


def test_the_pages_camera_proxy_and_sessions_refuse_flower(attacked: Attacked) -> None:
    client = attacked.system.client(JOBS_KEY)
    seen = attacked.flower.requests_seen()
    frame = client.get("/v1/cameras/flower/frame")
    assert frame.status_code == 403, frame.get_data(as_text=True)
    assert frame.get_json()["error"]["code"] == "camera_not_allowed"

    admin = attacked.system.client()
    person = admin.post("/v1/people", json={"display_name": "someone"}).get_json()["id"]
    roster = admin.post("/v1/rosters", json={"name": "own-services", "person_ids": [person]}).get_json()["id"]
    session = client.post(
        "/v1/attendance-sessions",
        json={
            "roster_id": roster,
            "cameras": [attacked.flower.url("/api/workers")],
            "burst": {"frames": 2, "over_s": 2},
        },
    )
    assert session.status_code == 403, session.get_json()
    assert session.get_json()["error"]["code"] == "camera_not_allowed"
    assert attacked.flower.requests_seen() == seen


def test_a_jobs_keys_results_and_callbacks_do_not_name_the_worker(attacked: Attacked, camera: str) -> None:
    jobs, admin = attacked.system.client(JOBS_KEY), attacked.system.client()
    with callback_receiver() as receiver:
        body = {"url": f"{camera}/{PHOTO}", "callback_url": receiver.url("/hook")}
        own = jobs.post("/v1/jobs/detect", json=body).get_json()["job_id"]
        shown = wait_for_job(jobs, own)
        assert shown["state"] == "succeeded"
        assert "worker" not in shown["result"], "a jobs key learns no worker host name"
        assert admin.get(f"/v1/jobs/{own}").get_json()["result"]["worker"] == attacked.worker.node
        delivered = _delivered(receiver, "/hook")
        assert delivered["job_id"] == own and "worker" not in delivered["result"]


def _delivered(receiver: CallbackReceiver, path: str) -> dict[str, Any]:
    wait_until(lambda: receiver.received(path), 60, "the callback to arrive")
    payload: dict[str, Any] = json.loads(receiver.received(path)[0].body)
    return payload
