"""The job system end to end: the real Flask app → real Redis → a real worker process with the real models."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import WorkerProcess, wait_for_job, wait_until
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration
SCENES = "oracles/mtcnn_facenet_pytorch/images"


def true_face_counts() -> dict[str, int]:
    """Faces per scene photo with probability ≥ 0.99 in the reference (the MANIFEST's true counts)."""
    reference = json.loads((shared_dir() / "oracles/mtcnn_facenet_pytorch/reference.json").read_text())
    return {
        name: sum(face["prob"] >= 0.99 for face in image["faces"])
        for name, image in reference["images"].items()
    }


def run_job(client: Any, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/jobs/{kind}", json=body)
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert response.headers["Location"] == accepted["status_url"]
    return wait_for_job(client, accepted["job_id"])


@pytest.mark.parametrize(
    "image", ["multiface.jpg", "two_people.jpg", "obama_small.jpg", "no_face_synthetic.png"]
)
def test_detect_job_finds_the_true_faces(client: Any, worker: WorkerProcess, camera: str, image: str) -> None:
    job = run_job(client, "detect", {"url": f"{camera}/{SCENES}/{image}"})
    assert job["state"] == "succeeded", job
    result = job["result"]
    confident = [face for face in result["faces"] if face["prob"] >= 0.99]
    assert len(confident) == true_face_counts()[image]
    for face in result["faces"]:
        assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    assert set(result["timings_ms"]) >= {"fetch", "decode", "detect", "total"}
    assert result["models"]["embedder"] == "dlib_resnet_v1"
    assert result["worker"]


def test_detect_accepts_an_uploaded_image(client: Any, worker: WorkerProcess) -> None:
    data = (shared_dir() / SCENES / "two_people.jpg").read_bytes()
    response = client.post(
        "/v1/jobs/detect",
        data={"image": (__import__("io").BytesIO(data), "f.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    job = wait_for_job(client, response.get_json()["job_id"])
    assert job["state"] == "succeeded"
    assert sum(face["prob"] >= 0.99 for face in job["result"]["faces"]) == 2
    assert job["result"]["frame"]["source"] == "upload"
    store = client.application.extensions["rollcall.jobs"].redis
    wait_until(lambda: not store.exists(f"rollcall:upload:{job['job_id']}"), 10, "the upload to be deleted")


def test_detect_accepts_base64(client: Any, worker: WorkerProcess) -> None:
    data = base64.b64encode((shared_dir() / SCENES / "obama_small.jpg").read_bytes()).decode()
    job = run_job(client, "detect", {"image_b64": data})
    assert job["state"] == "succeeded"
    assert job["result"]["frame"]["width"] == 320


def test_seed_modelfr_keeps_the_seed_shape(client: Any, worker: WorkerProcess, camera: str) -> None:
    response = client.get("/modelfr", query_string={"ip": f"{camera}/{SCENES}/two_people.jpg"})
    assert response.status_code == 200
    boxes = response.get_json()["box"]
    assert len(boxes) >= 2
    for box in boxes:
        assert set(box) == {"x1", "y1", "x2", "y2", "landmarks"}
        assert len(box["landmarks"]) == 10
        xs, ys = box["landmarks"][:5], box["landmarks"][5:]
        assert all(box["x1"] - 5 <= x <= box["x2"] + 5 for x in xs)
        assert all(box["y1"] - 5 <= y <= box["y2"] + 5 for y in ys)


def test_camera_errors_fail_the_job_with_a_stable_code(
    client: Any, worker: WorkerProcess, camera: str
) -> None:
    missing = run_job(client, "detect", {"url": f"{camera}/no/such/frame.jpg"})
    assert missing["state"] == "failed"
    assert missing["error"]["code"] == "camera_protocol_error"  # the camera answered 404
    metadata = run_job(client, "detect", {"url": "http://169.254.169.254/latest/meta-data/"})
    assert metadata["error"]["code"] == "camera_not_allowed"
    not_image = run_job(client, "detect", {"url": f"{camera}/datasets/MANIFEST.md"})
    assert not_image["state"] == "failed"
    assert not_image["error"]["code"] == "camera_protocol_error"  # text/markdown: not an image type
    # The worker goes on serving.
    after = run_job(client, "detect", {"url": f"{camera}/{SCENES}/obama_small.jpg"})
    assert after["state"] == "succeeded"


def test_seed_route_reports_errors_instead_of_an_empty_list(
    client: Any, worker: WorkerProcess, camera: str
) -> None:
    response = client.get("/modelfr", query_string={"ip": f"{camera}/nothing-here.jpg"})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "camera_protocol_error"  # the camera answered 404


def test_unknown_job_is_404(client: Any, redis_server: Any) -> None:
    response = client.get("/v1/jobs/6d3c9a7e-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "job_not_found"


def test_revoked_job_never_runs(client: Any, worker: WorkerProcess, camera: str) -> None:
    busy = client.post(
        "/v1/jobs/detect", json={"url": f"{camera}/slow/3/{SCENES}/obama_small.jpg"}
    ).get_json()
    queued = client.post("/v1/jobs/detect", json={"url": f"{camera}/{SCENES}/obama_small.jpg"}).get_json()
    revoked = client.delete(f"/v1/jobs/{queued['job_id']}")
    assert revoked.status_code == 200
    assert revoked.get_json()["state"] == "revoked"
    assert wait_for_job(client, busy["job_id"])["state"] == "succeeded"
    # The worker, once free, discards the job: Celery records REVOKED, not a result.
    from celery.result import AsyncResult

    from tests.conftest import wait_until

    celery_app = client.application.extensions["rollcall.jobs"].celery
    wait_until(
        lambda: AsyncResult(queued["job_id"], app=celery_app).state == "REVOKED",
        30,
        "the worker to discard the revoked job",
    )
    final = wait_for_job(client, queued["job_id"])
    assert final["state"] == "revoked"
    assert final["result"] is None
    assert final["error"]["code"] == "job_revoked"


def test_jobs_accept_the_small_face_mode_and_report_it(
    client: Any, worker: WorkerProcess, camera: str
) -> None:
    url = f"{camera}/{SCENES}/two_people.jpg"
    tiled = run_job(client, "detect", {"url": url, "small_faces": {"mode": "on", "rows": 2, "cols": 2}})
    assert tiled["state"] == "succeeded", tiled
    report = tiled["result"]["small_faces"]
    assert report["tiled"] is True and report["tiles"] == 4
    assert set(report["timings_ms"]) == {"whole_frame", "tiles", "merge"}
    assert sum(face["prob"] >= 0.99 for face in tiled["result"]["faces"]) == 2
    auto = run_job(client, "attendance", {"url": url, "small_faces": {"mode": "auto"}})
    assert auto["result"]["small_faces"] == {
        "mode": "auto",
        "tiled": False,
        "tiles": 0,
        "timings_ms": auto["result"]["small_faces"]["timings_ms"],
    }
    refused = client.post("/v1/jobs/detect", json={"url": url, "small_faces": {"mode": "always"}})
    assert refused.status_code == 400
