"""Security faults on the running system: a pickled message, a huge body, a deleted person, leaked secrets.

All on the shared deployment: a real worker consuming the model queue and a real API process
(gunicorn) on a loopback port.
"""

from __future__ import annotations

import base64
import pathlib
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kombu import Connection, Exchange, Producer

from tests.conftest import ADMIN_KEY, JOBS_KEY, wait_for_job, wait_until
from tests.reliability.conftest import STATE_DIR, ApiProcess, Deployment, HoldingCamera, submit
from tests.shared_data import shared_dir

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
WRONG_KEY = "wrong-key-that-nobody-has-0123456789"
CAMERA_PASSWORD = "S3cretCamPassw0rd"


class _TouchOnLoad:
    """Pickles to "create this file": harmless, and proof of execution if unpickling ever happens."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return pathlib.Path.touch, (self.path,)


def test_a_pickled_message_is_refused_and_never_executed(
    shared: Deployment, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    worker = shared.workers[0]
    marker = STATE_DIR / f"pickle-ran-{uuid.uuid4().hex}"
    job_id = str(uuid.uuid4())
    queue = shared.settings.model_queue
    headers = {
        "lang": "py",
        "task": "rollcall.models.detect",
        "id": job_id,
        "root_id": job_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
        "argsrepr": "()",
        "kwargsrepr": "{...}",
        "origin": "attacker",
    }
    body = (
        (),
        {"source": _TouchOnLoad(marker)},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    )
    with Connection(shared.settings.broker_url) as connection:
        Producer(connection.default_channel).publish(
            body,
            exchange=Exchange(queue, type="direct"),
            routing_key=queue,
            serializer="pickle",
            headers=headers,
        )

    wait_until(
        lambda: "untrusted content of type pickle" in worker.log(), 30, "the worker to refuse the message"
    )
    client = shared.client()
    after = wait_for_job(client, submit(client, "detect", {"url": holding_camera.url()}), timeout=60)
    assert not marker.exists(), "the pickled payload was executed"
    assert after["state"] == "succeeded" and worker.alive(), "the worker goes on serving"
    report.setdefault("security", {})["pickle_message"] = "refused, not executed, worker kept serving"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_gets_413_json_over_real_http(
    shared: Deployment, shared_api: ApiProcess, chunked: bool, report: dict[str, Any]
) -> None:
    limit = shared.settings.max_upload_bytes * 2
    payload = b'{"image_b64": "' + b"A" * (limit + 1_000_000) + b'"}'
    data: Any = iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)]) if chunked else payload
    response = requests.post(
        f"{shared_api.url}/v1/jobs/detect",
        data=data,
        timeout=30,
        headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert requests.get(f"{shared_api.url}/healthz", timeout=5).status_code == 200
    report.setdefault("security", {})[f"oversized_body_{'chunked' if chunked else 'sized'}"] = (
        "413 payload_too_large"
    )


@pytest.fixture(scope="module")
def enrolled(shared: Deployment) -> Iterator[dict[str, int]]:
    """obama and biden enrolled through the API (photos of the shared facebank)."""
    client = shared.client()
    people = {}
    for name in ("obama", "biden"):
        person = client.post(
            "/v1/people", json={"display_name": name, "external_id": f"sec-{name}"}
        ).get_json()
        for photo in sorted((shared_dir() / "datasets/facebank" / name).iterdir()):
            added = client.post(
                f"/v1/people/{person['id']}/faces",
                json={"image_b64": base64.b64encode(photo.read_bytes()).decode()},
            )
            assert added.status_code == 201, added.get_json()
        people[name] = person["id"]
    yield people


def stored_rows(deployment: Deployment, person_id: int) -> dict[str, int]:
    """The person's rows, read from the facebank file itself rather than through the API."""
    path = deployment.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        count = lambda sql: db.execute(sql, (person_id,)).fetchone()[0]  # noqa: E731
        return {
            "people": count("SELECT count(*) FROM people WHERE id = ?"),
            "face_images": count("SELECT count(*) FROM face_images WHERE person_id = ?"),
            "embeddings": count(
                "SELECT count(*) FROM embeddings JOIN face_images ON face_images.id = embeddings.face_id "
                "WHERE face_images.person_id = ?"
            ),
        }


def attendance(client: Any, url: str) -> dict[str, Any]:
    job = wait_for_job(client, submit(client, "attendance", {"url": url}), timeout=60)
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def names_present(result: dict[str, Any]) -> set[str]:
    return {entry["person"]["display_name"] for entry in result["present"]}


def test_deleting_a_person_removes_their_photos_and_embeddings_and_the_next_job_cannot_name_them(
    shared: Deployment, enrolled: dict[str, int], holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    client = shared.client()
    url = holding_camera.url("datasets/facebank_probe/two_people.jpg")
    biden = enrolled["biden"]
    assert names_present(attendance(client, url)) == {"obama", "biden"}
    faces = client.get(f"/v1/people/{biden}/faces").get_json()["items"]
    before = stored_rows(shared, biden)
    assert before["face_images"] == before["embeddings"] == len(faces) > 0

    assert client.delete(f"/v1/people/{biden}").status_code == 204

    assert stored_rows(shared, biden) == {"people": 0, "face_images": 0, "embeddings": 0}
    after = attendance(client, url)
    assert names_present(after) == {"obama"}
    # His face is still in the frame: now unknown, and even asked about directly it names nobody deleted.
    his_face = max(after["unknown_faces"], key=lambda face: face["prob"])
    identify = wait_for_job(client, submit(client, "identify", {"url": url, "box": his_face["box"]}))
    assert identify["state"] == "succeeded", identify
    assert biden not in [c["person"]["id"] for c in identify["result"]["candidates"]]
    assert identify["result"]["person"] is None or identify["result"]["person"]["id"] != biden
    assert client.get(f"/v1/people/{biden}").status_code == 404
    assert client.get(faces[0]["image_url"]).status_code == 404
    report.setdefault("security", {})["person_deletion"] = {
        "rows_before": before,
        "rows_after": 0,
        "named_after_delete": False,
    }


def test_keys_and_camera_passwords_never_reach_the_logs(
    shared: Deployment, shared_api: ApiProcess, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    for key in (ADMIN_KEY, JOBS_KEY, WRONG_KEY):
        requests.get(f"{shared_api.url}/v1/people", headers={"X-API-Key": key}, timeout=10)
        requests.get(f"{shared_api.url}/v1/people", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    secret_url = holding_camera.url().replace("http://", f"http://operator:{CAMERA_PASSWORD}@")
    response = requests.post(
        f"{shared_api.url}/v1/jobs/detect",
        json={"url": secret_url},
        headers={"X-API-Key": JOBS_KEY},
        timeout=10,
    )
    client = shared.client()
    job = wait_for_job(client, response.json()["job_id"], timeout=60)
    assert job["state"] == "succeeded"
    assert CAMERA_PASSWORD not in str(job["result"])
    # A seed route takes the camera URL in its query string, which access logs print.
    seed = requests.get(
        f"{shared_api.url}/modelfr", params={"ip": secret_url}, headers={"X-API-Key": JOBS_KEY}, timeout=60
    )
    assert seed.status_code == 200, seed.text
    wait_until(lambda: "GET /modelfr" in shared_api.log(), 10, "the access log line of the seed call")

    logs = {path.name: path.read_text(errors="replace") for path in STATE_DIR.glob("*.log")}
    assert shared_api.log_path.name in logs and len(logs) >= 2
    for secret in (ADMIN_KEY, JOBS_KEY, WRONG_KEY, CAMERA_PASSWORD):
        leaked = [name for name, text in logs.items() if secret in text]
        assert not leaked, f"a secret appears in {leaked}"
    report.setdefault("security", {})["secrets_in_logs"] = {"log_files_searched": len(logs), "found": 0}
