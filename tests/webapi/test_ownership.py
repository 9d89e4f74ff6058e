"""Jobs and attendance sessions belong to the API key that created them; ``admin`` sees all.

Two ``jobs`` keys and an admin key on the real app, a real worker and the real models: another
non-admin key gets the same 404 as for an id that never existed, for reading, revoking and stopping.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from settings import Settings
from tests.conftest import keyed_client, migrated_app, wait_for_job
from tests.webapi.test_people_api import assert_error, create

ALICE = "test-jobs-key-alice-0123456789"
BOB = "test-jobs-key-bob-0123456789"
ROOT = "test-admin-key-root-0123456789"
FRAME = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


@pytest.fixture(scope="module")
def owned_app(redis_server: Any) -> Any:
    keys = SecretStr(f"{ALICE}:jobs,{BOB}:jobs,{ROOT}:admin")
    return migrated_app(Settings(api_keys=keys, session_min_interval_s=5))


def test_a_job_is_visible_only_to_its_key_and_to_admin(owned_app: Any, worker: Any, camera: str) -> None:
    alice, bob, root = (keyed_client(owned_app, key) for key in (ALICE, BOB, ROOT))
    job_id = alice.post("/v1/jobs/detect", json={"url": f"{camera}/{FRAME}"}).get_json()["job_id"]
    assert wait_for_job(alice, job_id)["state"] == "succeeded"

    assert_error(bob.get(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    assert_error(bob.delete(f"/v1/jobs/{job_id}"), 404, "job_not_found")
    assert root.get(f"/v1/jobs/{job_id}").get_json()["state"] == "succeeded"
    assert alice.get(f"/v1/jobs/{job_id}").get_json()["result"]["faces"]


def test_a_session_is_visible_only_to_its_key_and_to_admin(owned_app: Any, camera: str) -> None:
    alice, bob, root = (keyed_client(owned_app, key) for key in (ALICE, BOB, ROOT))
    tag = uuid.uuid4().hex[:8]
    person = create(root, f"Owner {tag}")["id"]
    roster = root.post("/v1/rosters", json={"name": f"own {tag}", "person_ids": [person]}).get_json()["id"]
    created = alice.post(
        "/v1/attendance-sessions",
        json={"roster_id": roster, "cameras": [f"{camera}/{FRAME}"], "duration_s": 60, "interval_s": 30},
    )
    assert created.status_code == 201, created.get_json()
    session = created.get_json()["id"]

    for call in (
        lambda: bob.get(f"/v1/attendance-sessions/{session}"),
        lambda: bob.get(f"/v1/attendance-sessions/{session}/report"),
        lambda: bob.post(f"/v1/attendance-sessions/{session}/stop"),
    ):
        assert_error(call(), 404, "session_not_found")
    assert root.get(f"/v1/attendance-sessions/{session}").status_code == 200
    assert alice.get(f"/v1/attendance-sessions/{session}/report").status_code == 200
    assert alice.post(f"/v1/attendance-sessions/{session}/stop").get_json()["status"] == "stopped"


def test_session_cost_is_bounded_by_settings(owned_app: Any, camera: str) -> None:
    """9,999 ticks at 1 s over 16 cameras is refused at creation, naming the limit."""
    alice, root = keyed_client(owned_app, ALICE), keyed_client(owned_app, ROOT)
    tag = uuid.uuid4().hex[:8]
    person = create(root, f"Bounded {tag}")["id"]
    roster = root.post("/v1/rosters", json={"name": f"bound {tag}", "person_ids": [person]}).get_json()["id"]
    cameras = [f"{camera}/{FRAME}?c={n}" for n in range(16)]

    def plan(duration_s: float, interval_s: float, cams: list[str]) -> Any:
        body = {"roster_id": roster, "cameras": cams, "duration_s": duration_s, "interval_s": interval_s}
        return alice.post("/v1/attendance-sessions", json=body)

    too_fast = plan(9_999, 1, cameras)
    assert_error(too_fast, 400, "invalid_input")
    assert "ROLLCALL_SESSION_MIN_INTERVAL_S" in too_fast.get_json()["error"]["message"]
    too_many = plan(9_999 * 5, 5, cameras)
    assert_error(too_many, 400, "invalid_input")
    assert "ROLLCALL_SESSION_MAX_FRAMES" in too_many.get_json()["error"]["message"]
    within = plan(60, 5, cameras[:2])
    assert within.status_code == 201, within.get_json()
    assert alice.post(f"/v1/attendance-sessions/{within.get_json()['id']}/stop").status_code == 200
