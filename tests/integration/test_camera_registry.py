"""Registered cameras through real workers: a job names a camera, the worker looks it up and decrypts its
password, and the password is found nowhere else: not in the job's message, Redis, the worker's log or an
answer.

The cameras are real loopback servers that challenge for HTTP Basic (``tests/sources/camera_server.py``'s
``/basic/`` paths) and Digest (Apache, ``tests/cameras``), so a frame arrives only if the worker answered
with the registry's credentials.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from benchmarks.camera_servers import CAMERA_PASSWORD, CAMERA_USER, HIKVISION, ApacheCamera, GstRtspCamera
from tests.conftest import WorkerProcess, keyed_client, wait_for_job
from tests.integration.test_sessions import ChangingCamera
from tests.sources.camera_server import CameraServer
from tests.webapi.photos import one_face_photo

pytestmark = pytest.mark.integration
PASSWORD = "hunter2"  # the loopback camera's Basic password (user "admin")
PROBES = "datasets/facebank_probe"


@pytest.fixture(scope="module")
def basic_camera() -> Iterator[CameraServer]:
    server = CameraServer(credentials=("admin", PASSWORD)).start()
    yield server
    server.stop()


def register(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/cameras", json=body)
    assert response.status_code == 201, response.get_json()
    camera: dict[str, Any] = response.get_json()
    return camera


def submit(client: Any, kind: str, body: dict[str, Any]) -> str:
    response = client.post(f"/v1/jobs/{kind}", json=body)
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def redis_values(url: str) -> Iterator[bytes]:
    """Every key and value in the Redis database at ``url`` (strings, lists, hashes, sets, sorted sets)."""
    store = redis.Redis.from_url(url)
    for key in store.scan_iter(count=1000):
        yield key
        kind = store.type(key)
        if kind == b"string":
            yield store.get(key) or b""
        elif kind == b"list":
            yield from store.lrange(key, 0, -1)
        elif kind == b"hash":
            for field, value in store.hgetall(key).items():
                yield field + b"=" + value
        elif kind == b"set":
            yield from store.smembers(key)
        elif kind == b"zset":
            yield from store.zrange(key, 0, -1)


@pytest.fixture(scope="module")
def basic_job(app: Any, worker: WorkerProcess, basic_camera: CameraServer) -> dict[str, Any]:
    """A detect job on a registered Basic-auth camera, run by the suite's worker."""
    client = keyed_client(app)
    register(
        client,
        name="reg-basic",
        url=basic_camera.url("/basic/photo.jpg"),
        username="admin",
        password=PASSWORD,
    )
    return wait_for_job(client, submit(client, "detect", {"camera": "reg-basic"}))


def test_a_detect_job_naming_a_registered_camera_finds_its_face(
    basic_job: dict[str, Any], basic_camera: CameraServer
) -> None:
    assert basic_job["state"] == "succeeded", basic_job
    result = basic_job["result"]
    assert sum(face["prob"] >= 0.99 for face in result["faces"]) == 1  # obama_small.jpg
    assert result["frame"]["source"] == "camera:reg-basic"
    seen = [request.authorization for request in basic_camera.requests if request.path == "/basic/photo.jpg"]
    assert seen[0] is None and seen[-1] is not None and seen[-1].startswith("Basic "), (
        "answered the challenge"
    )


def test_the_password_is_in_no_message_no_redis_key_and_no_log_line(
    client: Any, worker: WorkerProcess, basic_job: dict[str, Any]
) -> None:
    secret = PASSWORD.encode()

    leaks = [
        value[:200]
        for url in (os.environ["ROLLCALL_BROKER_URL"], os.environ["ROLLCALL_RESULT_BACKEND"])
        for value in redis_values(url)
        if secret in value
    ]
    assert leaks == []
    assert PASSWORD not in worker.log()
    assert PASSWORD not in json.dumps(basic_job)
    assert '"camera": "reg-basic"' in worker.log(), "the job's log line names the camera"


def test_the_queued_message_names_the_camera_only(system_factory: Any, basic_camera: CameraServer) -> None:
    system = system_factory("registry-queue")  # no worker: the message stays on the queue to be read
    client = system.client()
    register(
        client, name="queued", url=basic_camera.url("/basic/photo.jpg"), username="admin", password=PASSWORD
    )

    submit(client, "attendance", {"camera": "queued"})

    broker = redis.Redis.from_url(system.env["ROLLCALL_BROKER_URL"])
    [raw] = broker.lrange("rollcall.models", 0, -1)
    message = json.loads(raw)
    assert PASSWORD.encode() not in raw
    assert message["headers"]["kwargsrepr"] == "{'source': {'camera': 'queued'}}"  # what Flower shows
    body = message["body"]
    assert isinstance(body, str)  # base64 of [args, kwargs, embed]
    args, kwargs, _ = json.loads(base64.b64decode(body))
    assert (args, kwargs) == ([], {"source": {"camera": "queued"}})


def test_the_cameras_small_face_mode_applies_unless_the_job_says_otherwise(
    client: Any, worker: WorkerProcess, camera: str
) -> None:
    register(client, name="reg-wide", url=f"{camera}/{PROBES}/two_people.jpg", small_faces="on")

    by_camera = wait_for_job(client, submit(client, "detect", {"camera": "reg-wide"}))
    by_job = wait_for_job(
        client, submit(client, "detect", {"camera": "reg-wide", "small_faces": {"mode": "off"}})
    )

    assert by_camera["state"] == by_job["state"] == "succeeded", (by_camera, by_job)
    assert by_camera["result"]["small_faces"]["mode"] == "on"
    assert by_job["result"]["small_faces"]["mode"] == "off"


def test_a_camera_deleted_before_the_worker_ran_fails_the_job_with_camera_not_found(
    client: Any, worker: WorkerProcess, camera: str
) -> None:
    register(client, name="reg-gone", url=f"{camera}/{PROBES}/obama1.jpg")
    busy = submit(client, "detect", {"url": f"{camera}/slow/3/{PROBES}/obama1.jpg"})  # the solo worker waits
    doomed = submit(client, "detect", {"camera": "reg-gone"})

    assert client.delete("/v1/cameras/reg-gone").status_code == 204

    assert wait_for_job(client, busy)["state"] == "succeeded"
    job = wait_for_job(client, doomed)
    assert job["state"] == "failed"
    assert job["error"]["code"] == "camera_not_found"
    assert "reg-gone" in job["error"]["message"]


def test_legacy_routes_and_enrolment_take_a_registered_camera(
    client: Any, worker: WorkerProcess, basic_job: dict[str, Any]
) -> None:
    boxes = client.get("/modelfr", query_string={"camera": "reg-basic"})
    assert boxes.status_code == 200, boxes.get_json()
    assert len(boxes.get_json()["box"]) == 1

    photo = one_face_photo()  # fresh bytes: the session's facebank refuses a photo enrolled before
    with ChangingCamera(photo, photo) as door:
        register(client, name="reg-enrol", url=door.url)
        person = client.post("/v1/people", json={"display_name": "Enrolled from a camera"}).get_json()
        enrolled = client.post(f"/v1/people/{person['id']}/faces", json={"camera": "reg-enrol"})
    assert enrolled.status_code == 201, enrolled.get_json()
    assert enrolled.get_json()["person_id"] == person["id"]
    assert door.requests == 1


def test_a_registered_digest_camera_gets_digest_answers_only(
    client: Any, worker: WorkerProcess, apache_camera: ApacheCamera
) -> None:
    register(
        client,
        name="reg-digest",
        url=apache_camera.url(HIKVISION, tag="registry-digest"),
        username=CAMERA_USER,
        password=CAMERA_PASSWORD,  # an "@" and a ":" in it
    )

    job = wait_for_job(client, submit(client, "detect", {"camera": "reg-digest"}))
    report = client.post("/v1/cameras/reg-digest/test").get_json()

    assert job["state"] == "succeeded", job
    assert sum(face["prob"] >= 0.99 for face in job["result"]["faces"]) == 1
    sent = [auth for path, auth in apache_camera.requests("registry-digest", at_least=2) if path == HIKVISION]
    assert sent and all(auth == "-" or auth.startswith("Digest ") for auth in sent), sent
    assert any(auth.startswith("Digest ") for auth in sent), "the credentials answered the challenge"
    assert (report["ok"], report["auth"]) == (True, "digest-md5")
    assert CAMERA_PASSWORD not in json.dumps(job) + json.dumps(report) + worker.log()


def test_a_registered_rtsp_camera_behind_digest_streams_to_the_worker(
    client: Any, worker: WorkerProcess, gst_camera: GstRtspCamera
) -> None:
    register(
        client,
        name="reg-rtsp",
        url=gst_camera.url("/h265", secure=True, credentials=(CAMERA_USER, CAMERA_PASSWORD)),
    )

    job = wait_for_job(client, submit(client, "detect", {"camera": "reg-rtsp"}))

    assert job["state"] == "succeeded", job
    assert sum(face["prob"] >= 0.99 for face in job["result"]["faces"]) == 1
    assert client.get("/v1/cameras/reg-rtsp").get_json()["url"] == gst_camera.url("/h265", secure=True)
