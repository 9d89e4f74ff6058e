"""`make run` brings the system up on fresh ports, the README's example and facebank import work as written,
Flower's API answers as the docs say, and Ctrl-C stops everything cleanly."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shlex
import signal
import subprocess
import threading
from typing import Any

import pytest
import requests

from tests.conftest import _CameraHandler, free_port, port_open, wait_until
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


def ctrl_c_as_in_a_terminal() -> None:
    """Let ``make run`` receive SIGINT as it does in a terminal, whatever this test run inherited.

    A shell started in the background (``cmd &`` from a script) hands its children SIGINT ignored, and
    bash cannot trap a signal ignored when it starts: ``make run`` launched from such a CI shell never
    ran its Ctrl-C trap and failed the test, though a user's Ctrl-C works.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def check_the_readers_processor_sends_live_events(api_port: int) -> None:
    """The page's live view works out of the box: make run's reader runs the live processor, so a camera's
    event stream carries its tracked faces (the probe photo's two)."""
    key = (REPO_ROOT / "var/dev-api-key").read_text().strip()
    with requests.get(
        f"http://127.0.0.1:{api_port}/v1/cameras/probe/events",
        headers={"X-API-Key": key},
        stream=True,
        timeout=(5, 120),
    ) as events:
        assert events.status_code == 200, events.text
        buffer, found = b"", []
        for chunk in events.iter_content(chunk_size=None):
            buffer += chunk
            blocks = buffer.split(b"\n\n")
            buffer = blocks.pop()
            found += [json.loads(b[len(b"data: ") :]) for b in blocks if b.startswith(b"data: ")]
            if len(found) >= 10 or any(len(event["tracks"]) >= 2 for event in found):
                break
    assert any(event["camera"] == "probe" and len(event["tracks"]) >= 2 for event in found), found


def test_make_run_serves_the_readme_example_and_stops_on_ctrl_c(tmp_path: Any, probe_camera: int) -> None:
    redis_port, api_port, flower_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    reader_metrics_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROLLCALL_")}
    env.update(
        ROLLCALL_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        ROLLCALL_RESULT_BACKEND=f"redis://127.0.0.1:{redis_port}/1",
        ROLLCALL_DATABASE_URL=f"sqlite:///{tmp_path / 'facebank.db'}",
        ROLLCALL_CAMERA_ALLOW="127.0.0.0/8",
        ROLLCALL_API_PORT=str(api_port),
        ROLLCALL_FLOWER_PORT=str(flower_port),
        ROLLCALL_WORKER_METRICS_PORT=str(metrics_port),
        ROLLCALL_READER_METRICS_PORT=str(reader_metrics_port),
        # A camera for the live view's events (the probe camera serves the README's photos).
        ROLLCALL_UI_CAMERAS=f"probe=http://127.0.0.1:{probe_camera}/two_people.jpg",
    )
    log = (tmp_path / "make-run.log").open("wb")
    process = subprocess.Popen(
        ["make", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
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
        for port in (api_port, flower_port, metrics_port, reader_metrics_port):
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

        # The README's import command, run as written after "Try it": it finds obama and biden (enrolled
        # under p-obama and p-biden) by name instead of creating a second pair.
        command = shlex.split(readme_import_command().replace("../shared", str(shared_dir())))
        imported = subprocess.run(
            [*command, "--timeout", "180"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
        for name in ("obama", "biden"):
            assert re.search(
                rf"matched +{name}/: person \d+ \({name}, external id p-{name}\) by name", imported.stdout
            )
        people = requests.get(
            f"http://127.0.0.1:{api_port}/v1/people",
            params={"limit": 100},
            headers={"X-API-Key": (REPO_ROOT / "var/dev-api-key").read_text().strip()},
            timeout=10,
        ).json()
        names = sorted(person["display_name"] for person in people["items"])
        assert names == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"], names

        check_flower_asks_for_its_password_and_refuses_cross_site_requests(flower_port)
        check_one_metrics_port_shows_the_model_workers_series(metrics_port, tmp_path / "make-run.log")
        wait_until(lambda: port_open(reader_metrics_port), 60, "the stream reader's /metrics")
        reader_metrics = requests.get(f"http://127.0.0.1:{reader_metrics_port}/metrics", timeout=10).text
        assert 'rollcall_live_cameras{state="held"} 0.0' in reader_metrics, "make run starts a stream reader"
        check_the_readers_processor_sends_live_events(api_port)
        served_by = requests.get(f"http://127.0.0.1:{api_port}/healthz", timeout=10).headers.get("Server", "")
        assert served_by.startswith("gunicorn"), f"the API should be gunicorn, as in compose: {served_by!r}"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("make run did not stop on Ctrl-C within 60 s")
    wait_until(
        lambda: (
            not any(
                port_open(p) for p in (api_port, flower_port, redis_port, metrics_port, reader_metrics_port)
            )
        ),
        30,
        "every process started by make run to stop",
    )
    output = (tmp_path / "make-run.log").read_text()
    assert "rollcall stopped" in output, output[-2000:]
    # GNU make ends itself with the SIGINT it received once its recipe is done (status 130 in a shell,
    # like any command stopped by Ctrl-C); what must not appear is a failed recipe ("make: *** ... Error").
    assert "Error" not in output.split("rollcall stopped")[-1], output[-2000:]
    assert process.returncode in (0, -signal.SIGINT), process.returncode


def check_flower_asks_for_its_password_and_refuses_cross_site_requests(flower_port: int) -> None:
    """Issue 26: an open Flower API let a job (or any web page) shut the worker down or shrink its pool."""
    api = f"http://127.0.0.1:{flower_port}/api"
    password = (REPO_ROOT / "var/flower-password").read_text().strip()
    assert requests.get(f"{api}/workers", timeout=30).status_code == 401, "Flower's API needs the password"
    workers = requests.get(f"{api}/workers", params={"refresh": 1}, auth=("rollcall", password), timeout=30)
    assert workers.status_code == 200, workers.text
    node = next(name for name in workers.json() if name.startswith("rollcall-worker@"))
    processes_before = len(workers.json()[node]["stats"]["pool"]["processes"])
    # What a browser sends for a form POSTed from another site, with the Basic credentials it cached.
    cross_site = requests.post(
        f"{api}/worker/pool/shrink/{node}",
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        auth=("rollcall", password),
        timeout=30,
    )
    assert cross_site.status_code == 403, cross_site.text
    unauthenticated = requests.post(f"{api}/worker/pool/shrink/{node}", timeout=30)
    assert unauthenticated.status_code == 401
    after = requests.get(f"{api}/workers", params={"refresh": 1}, auth=("rollcall", password), timeout=30)
    assert len(after.json()[node]["stats"]["pool"]["processes"]) == processes_before, "the pool was shrunk"


def check_one_metrics_port_shows_the_model_workers_series(metrics_port: int, log_path: Any) -> None:
    """Issue 26: both workers took the same port; when the callback worker won, no rollcall_* series."""
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert "rollcall_model_load_seconds{" in text, "the model worker's series are not on the metrics port"
    assert "rollcall_jobs_total{" in text, "the jobs run by the README example are counted"
    log = log_path.read_text()
    assert "Address already in use" not in log and "cannot serve metrics" not in log, log[-3000:]


def readme_import_command() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    found = re.search(r"^(\S*flask --app webapi facebank import \S+)", readme, re.M)
    assert found is not None, "README lacks the facebank import command"
    return found.group(1)


def test_run_script_ends_with_status_0_when_asked_to_stop(tmp_path: Any) -> None:
    """SIGTERM to scripts/run.sh (as a service manager stops it) is a clean stop: status 0."""
    redis_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROLLCALL_")}
    env.update(
        ROLLCALL_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0",
        ROLLCALL_RESULT_BACKEND=f"redis://127.0.0.1:{redis_port}/1",
        ROLLCALL_DATABASE_URL=f"sqlite:///{tmp_path / 'facebank.db'}",
        ROLLCALL_API_PORT=str(free_port()),
        ROLLCALL_FLOWER_PORT=str(free_port()),
        ROLLCALL_WORKER_METRICS_PORT=str(free_port()),
    )
    process = subprocess.Popen(
        ["scripts/run.sh"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until(lambda: port_open(redis_port), 60, "run.sh to start its Redis")
    finally:
        process.terminate()
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "rollcall stopped" in output
    assert not port_open(redis_port), "its Redis should be stopped too"
