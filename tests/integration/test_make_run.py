"""`make run` brings the system up on fresh ports, the README's example works as written, Ctrl-C stops it."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import signal
import subprocess
import threading
from typing import Any

import pytest
import requests

from tests.conftest import _CameraHandler, _port_open, free_port, wait_until
from tests.shared_data import REPO_ROOT, shared_dir

pytestmark = pytest.mark.integration


def readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- readme-example:start -->\n```bash\n(.*?)```\n<!-- readme-example:end -->", readme, re.S
    )
    assert block is not None, "README lacks the readme-example block"
    return block.group(1)


@pytest.fixture()
def probe_camera() -> Any:
    handler = functools.partial(_CameraHandler, directory=str(shared_dir() / "datasets/facebank_probe"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_make_run_serves_the_readme_example_and_stops_on_ctrl_c(tmp_path: Any, probe_camera: int) -> None:
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
    )
    log = (tmp_path / "make-run.log").open("wb")
    process = subprocess.Popen(
        ["make", "run"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:

        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{api_port}/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(lambda: ready() or process.poll() is not None, 240, "make run to be ready")
        output = (tmp_path / "make-run.log").read_text()
        assert process.poll() is None, output
        for port in (api_port, flower_port, metrics_port):
            assert f"http://127.0.0.1:{port}" in output
        assert f"starting one on 127.0.0.1:{redis_port}" in output, "make run should start its own Redis"

        script = (
            readme_example()
            .replace("localhost:8000", f"localhost:{api_port}")
            .replace("127.0.0.1:8080", f"127.0.0.1:{probe_camera}")
            .replace("../shared", str(shared_dir()))
        )
        example = subprocess.run(
            ["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240
        )
        assert example.returncode == 0, example.stderr
        lines = [json.loads(line) for line in example.stdout.splitlines() if line.strip()]
        faces = [line for line in lines if "face_id" in line or "sha256" in line]
        assert len(faces) == 2, lines
        job = next(line for line in lines if line.get("type") == "detect")
        assert job["state"] == "succeeded" and len(job["result"]["faces"]) >= 2
        seed_boxes = next(line for line in lines if set(line) == {"box"})
        assert all(len(box["landmarks"]) == 10 for box in seed_boxes["box"])
        assert sorted(lines[-1]["id"]) == ["biden", "obama"]
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("make run did not stop on Ctrl-C within 60 s")
    wait_until(
        lambda: not any(_port_open(p) for p in (api_port, flower_port, redis_port, metrics_port)),
        30,
        "every process started by make run to stop",
    )
