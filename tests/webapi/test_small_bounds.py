"""Smaller holes of issue 15, each through the real app (and, where a job must run, a real worker)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from settings import Settings
from tests.conftest import keyed_client, migrated_app, wait_for_job
from tests.webapi.test_people_api import assert_error, create

FRAME = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


def test_an_attendance_roster_naming_nobody_is_refused_at_submission(client: Any) -> None:
    ada = create(client, f"Ada {uuid.uuid4().hex[:8]}")["id"]
    missing = 2_000_000_000
    refused = client.post(
        "/v1/jobs/attendance", json={"url": "http://127.0.0.1/x.jpg", "roster": [ada, missing]}
    )
    assert_error(refused, 404, "person_not_found")
    assert str(missing) in refused.get_json()["error"]["message"]


def test_a_roster_member_deleted_after_submission_is_skipped_when_the_job_runs(
    client: Any, worker: Any, camera: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    kept, gone = create(client, f"Kept {tag}")["id"], create(client, f"Gone {tag}")["id"]
    busy = client.post("/v1/jobs/detect", json={"url": f"{camera}/slow/2/{FRAME}"}).get_json()["job_id"]
    job = client.post("/v1/jobs/attendance", json={"url": f"{camera}/{FRAME}", "roster": [kept, gone]})
    assert job.status_code == 202
    assert client.delete(f"/v1/people/{gone}").status_code == 204  # while the worker is still busy
    assert wait_for_job(client, busy)["state"] == "succeeded"
    final = wait_for_job(client, job.get_json()["job_id"])
    assert final["state"] == "succeeded", final
    assert [person["id"] for person in final["result"]["absent"]] == [kept]


def test_session_cameras_outside_the_allowlist_are_refused_at_creation(client: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    person = create(client, f"Watched {tag}")["id"]
    roster = client.post("/v1/rosters", json={"name": f"allow {tag}", "person_ids": [person]}).get_json()[
        "id"
    ]
    body = {"roster_id": roster, "duration_s": 60, "interval_s": 30}
    refused = client.post(
        "/v1/attendance-sessions",
        json={**body, "cameras": ["http://127.0.0.1:9/a.jpg", "http://169.254.169.254/latest/meta-data"]},
    )
    assert_error(refused, 403, "camera_not_allowed")
    assert "cameras[1]" in refused.get_json()["error"]["message"]
    rtsp = client.post(
        "/v1/attendance-sessions",
        json={**body, "cameras": ["rtsp://127.0.0.1:9/live", "rtsps://169.254.169.254/live"]},
    )
    assert_error(rtsp, 403, "camera_not_allowed")
    assert "cameras[1]" in rtsp.get_json()["error"]["message"]


def test_bidirectional_controls_are_refused_in_names_and_external_ids(client: Any) -> None:
    for field in ("display_name", "external_id"):
        for control in ("\u202e", "\u2066", "\u200f"):
            body = {"display_name": "Plain", field: f"x{control}evil"}
            assert_error(client.post("/v1/people", json=body), 400, "invalid_input")
    person = create(client, f"Plain {uuid.uuid4().hex[:8]}")["id"]
    assert_error(
        client.patch(f"/v1/people/{person}", json={"display_name": "x\u202eevil"}), 400, "invalid_input"
    )
    assert_error(
        client.post("/v1/rosters", json={"name": "x\u202eevil", "person_ids": [person]}), 400, "invalid_input"
    )


def test_error_messages_hold_no_python_reprs(client: Any, worker: Any) -> None:
    """A JPEG signature followed by junk passes the API's cheap check and fails in the worker's decoder."""
    junk = base64.b64encode(b"\xff\xd8\xff" + b"junk" * 100).decode()
    final = wait_for_job(
        client, client.post("/v1/jobs/detect", json={"image_b64": junk}).get_json()["job_id"]
    )
    assert final["state"] == "failed" and final["error"]["code"] == "not_an_image"
    assert " object at 0x" not in final["error"]["message"], final["error"]["message"]


def test_the_upload_limit_is_the_largest_request_body(redis_server: Any) -> None:
    small = keyed_client(migrated_app(Settings(max_upload_bytes=10_000)))
    body = '{"image_b64": "' + "A" * 12_000 + '"}'
    refused = small.post("/v1/jobs/detect", data=body, content_type="application/json")
    assert_error(refused, 413, "payload_too_large")
    assert "10000 bytes" in refused.get_json()["error"]["message"]


def test_openapi_documents_the_idempotency_key_and_both_ways_to_send_the_api_key(client: Any) -> None:
    document = client.get("/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    for path in ("/v1/jobs/detect", "/v1/jobs/identify", "/v1/jobs/attendance", "/v1/facebank/calibrate"):
        post = document["paths"][path]["post"]
        headers = [p for p in post["parameters"] if p["in"] == "header"]
        assert [p["name"] for p in headers] == ["Idempotency-Key"], path
        assert {"apiKey": []} in post["security"] and {"bearer": []} in post["security"]
        assert "429" in post["responses"]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_openapi_states_that_roster_and_roster_id_do_not_go_together(client: Any) -> None:
    # The fuzzing suite generates requests from the document: a rule the API enforces must be stated in it.
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["AttendanceRequest"]
    both = schema["not"]
    assert sorted(both["required"]) == ["roster", "roster_id"]
    assert both["properties"]["roster"] == both["properties"]["roster_id"] == {"not": {"type": "null"}}
    body = {"url": "http://cam/x.jpg", "roster": [], "roster_id": 10}
    refused = client.post("/v1/jobs/attendance", json=body)
    assert_error(refused, 400, "invalid_input")
    assert "not both" in refused.get_json()["error"]["message"]
