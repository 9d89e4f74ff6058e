"""Fairness: one API key cannot take every worker, a seed route that gives up leaves no job behind,
and interactive jobs do not wait behind bulk work.

Real API app, real Redis, real solo workers and models; the camera holds frames to keep jobs busy.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, keyed_client, wait_for_job, wait_until
from tests.reliability.conftest import Deployment, HoldingCamera
from tests.shared_data import shared_dir

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
ALICE = "fair-jobs-key-alice-0123456789"
BOB = "fair-jobs-key-bob-0123456789"
KEYS = f"{ALICE}:jobs,{BOB}:jobs,{ADMIN_KEY}:admin"


def job_lines(worker: Any, job: str) -> list[dict[str, Any]]:
    """The one log line per finished job (``tasks.joblog``) of one job type."""
    found = []
    for line in worker.log().splitlines():
        if "] job {" in line:
            fields = json.loads(line.split("] job ", 1)[1])
            if fields["job"] == job:
                found.append(fields)
    return found


def test_a_key_over_its_jobs_in_flight_gets_429_while_another_key_is_served(
    deploy: Any, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    deployment: Deployment = deploy("fair-inflight", ROLLCALL_API_KEYS=KEYS, ROLLCALL_MAX_JOBS_IN_FLIGHT="3")
    deployment.start_worker("w1")
    alice, bob = keyed_client(deployment.app, ALICE), keyed_client(deployment.app, BOB)

    held = [alice.post("/v1/jobs/detect", json={"url": holding_camera.held_url(2)[0]}) for _ in range(3)]
    assert [r.status_code for r in held] == [202] * 3
    refused = alice.post("/v1/jobs/detect", json={"url": holding_camera.url()})
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_jobs_in_flight"
    assert int(refused.headers["Retry-After"]) >= 1
    other = bob.post("/v1/jobs/detect", json={"url": holding_camera.url()})
    assert other.status_code == 202, "another key is not held to alice's limit"

    assert wait_for_job(bob, other.get_json()["job_id"])["state"] == "succeeded"
    finals = [wait_for_job(alice, r.get_json()["job_id"]) for r in held]
    assert [f["state"] for f in finals] == ["succeeded"] * 3
    again = alice.post("/v1/jobs/detect", json={"url": holding_camera.url()})
    assert again.status_code == 202, "ended jobs no longer count"
    assert wait_for_job(alice, again.get_json()["job_id"])["state"] == "succeeded"
    report.setdefault("fairness", {})["jobs_in_flight"] = {"limit": 3, "refused_with": 429}


def test_a_key_over_its_rate_gets_429_with_retry_after(deploy: Any, holding_camera: HoldingCamera) -> None:
    """No worker needed: the limit is checked when the job is submitted."""
    deployment: Deployment = deploy("fair-rate", ROLLCALL_API_KEYS=KEYS, ROLLCALL_RATE_LIMIT_PER_MINUTE="5")
    alice, bob = keyed_client(deployment.app, ALICE), keyed_client(deployment.app, BOB)
    admin = keyed_client(deployment.app, ADMIN_KEY)
    body = {"url": holding_camera.url()}
    statuses = []
    for _ in range(11):  # two one-minute windows at most, should one end during the loop
        response = alice.post("/v1/jobs/detect", json=body)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert 5 <= statuses.count(202) <= 10
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert bob.post("/v1/jobs/detect", json=body).status_code == 202
    assert admin.post("/v1/jobs/detect", json=body).status_code == 202, "admin keys are not limited"


def test_a_seed_route_that_stops_waiting_revokes_its_job(
    deploy: Any, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    deployment: Deployment = deploy("fair-seed", ROLLCALL_LEGACY_WAIT_S="1")
    worker = deployment.start_worker("w1")
    client = deployment.client()

    busy = client.get("/modelfr", query_string={"ip": holding_camera.held_url(4)[0]})
    assert busy.status_code == 504  # its job runs on: a running job is not interrupted
    for _ in range(3):  # the worker is busy: these give up while their jobs are queued
        gave_up = client.get("/modelfr", query_string={"ip": holding_camera.url()})
        assert gave_up.status_code == 504
        assert gave_up.get_json()["error"]["code"] == "job_timeout"

    def skipped() -> int:
        """Revoked jobs the worker dropped: by Celery's revoke list, or by our record (``tasks.registry``)."""
        dropped = worker.log().count("Discarding revoked task: rollcall.models.detect")
        return dropped + sum(line["outcome"] == "revoked" for line in job_lines(worker, "detect"))

    wait_until(lambda: skipped() == 3, 60, "the three abandoned jobs to be dropped unrun")
    outcomes = [line["outcome"] for line in job_lines(worker, "detect")]
    assert outcomes.count("succeeded") == 1, outcomes
    report.setdefault("fairness", {})["seed_route_gave_up"] = {"queued_jobs_revoked": 3, "ran": 0}


def test_interactive_jobs_do_not_wait_behind_bulk_work(
    deploy: Any, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    """Eight enrolments (bulk) queued first, each holding the worker 1 s; a detect then runs within two."""
    deployment: Deployment = deploy("fair-queues")
    worker = deployment.start_worker("w1")
    celery = deployment.app.extensions["rollcall.jobs"].celery
    for _ in range(8):
        url = holding_camera.held_url(1, "datasets/facebank_probe/two_people.jpg")[0]
        celery.send_task("rollcall.models.enrol_face", kwargs={"person_id": 10**9, "source": {"url": url}})
    wait_until(lambda: "enrol_face" in worker.log() or len(job_lines(worker, "enrol_face")) > 0, 30, "bulk")
    client = deployment.client()
    detect = client.post("/v1/jobs/detect", json={"url": holding_camera.url()}).get_json()["job_id"]
    assert wait_for_job(client, detect, timeout=60)["state"] == "succeeded"
    bulk_before = len(job_lines(worker, "enrol_face"))
    assert bulk_before <= 3, f"the detect job waited for {bulk_before} of 8 bulk jobs"
    wait_until(lambda: len(job_lines(worker, "enrol_face")) == 8, 60, "the bulk work to finish")
    report.setdefault("fairness", {})["interactive_behind_bulk"] = {
        "bulk_queued": 8,
        "ran_first": bulk_before,
    }


# --- sessions (issue 26: one key's sessions starved everyone else) ---
SESSION_CAP = 2  # ROLLCALL_SESSION_MAX_QUEUED_FRAMES in the test below


def frame_lines(worker: Any, camera_origin: str) -> list[dict[str, Any]]:
    """The job lines of session frames fetched from one camera (alice's and bob's cameras differ)."""
    return [line for line in job_lines(worker, "session_frame") if line.get("camera") == camera_origin]


def worker_log_lines(worker: Any) -> list[str]:
    return worker.log().splitlines()


def frames_ahead_of(worker: Any, session_id: int, own_camera: str, other_camera: str) -> list[int]:
    """For each tick of ``session_id``: how many frames from ``other_camera`` ended between the tick
    queuing its frame and that frame's own job line (the frames it waited behind, one running)."""
    waited, pending = [], []  # pending: a count per tick whose frame has not ended yet, oldest first
    for line in worker_log_lines(worker):
        if f"session {session_id} tick " in line and ": capture (" in line:
            pending.append(0)
        elif "] job {" in line and pending:
            fields = json.loads(line.split("] job ", 1)[1])
            if fields["job"] != "session_frame":
                continue
            if fields.get("camera") == other_camera:
                pending = [count + 1 for count in pending]
            elif fields.get("camera") == own_camera:
                waited.append(pending.pop(0))
    return waited


def test_one_keys_sessions_are_bounded_and_cannot_starve_another_keys_burst_or_an_enrolment(
    deploy: Any, camera: str, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    """At most 2 live sessions and 2 queued frames per key; bob's frames and admin's enrolment wait
    behind at most that many of alice's; stopping alice's sessions drops her queued frames at once."""
    deployment: Deployment = deploy(
        "fair-sessions",
        ROLLCALL_API_KEYS=KEYS,
        ROLLCALL_MAX_LIVE_SESSIONS="2",
        ROLLCALL_SESSION_MAX_QUEUED_FRAMES=str(SESSION_CAP),
    )
    worker = deployment.start_worker("w1")
    admin, alice, bob = (keyed_client(deployment.app, key) for key in (ADMIN_KEY, ALICE, BOB))
    person = admin.post("/v1/people", json={"display_name": "obama"}).get_json()["id"]
    roster = admin.post("/v1/rosters", json={"name": "fair", "person_ids": [person]}).get_json()["id"]
    slow = f"{camera}/slow/1/oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"  # 1 s per fetch
    alice_camera = camera.removeprefix("http://")
    # Two cameras: each tick queues two frames at once (a solo worker takes ticks between frames).
    plan = {"roster_id": roster, "cameras": [slow, slow], "interval_s": 1, "duration_s": 300}

    created = [alice.post("/v1/attendance-sessions", json=plan) for _ in range(3)]
    assert [r.status_code for r in created] == [201, 201, 429], [r.get_json() for r in created]
    assert created[2].get_json()["error"]["code"] == "too_many_sessions"
    assert 1 <= int(created[2].headers["Retry-After"]) <= 301
    alice_sessions = [r.get_json()["id"] for r in created[:2]]

    records = deployment.app.extensions["rollcall.jobs"]
    owner = hashlib.sha256(ALICE.encode()).hexdigest()
    queued: list[int] = []

    def alice_saturated() -> bool:
        queued.append(records.redis.zcard(f"rollcall:inflight-frames:{owner}"))
        return len(frame_lines(worker, alice_camera)) >= 2 and queued[-1] == SESSION_CAP

    wait_until(alice_saturated, 60, "alice's sessions to fill her frames in flight")
    assert max(queued) <= SESSION_CAP, queued
    member = records.redis.zrange(f"rollcall:inflight:{owner}", 0, 0)[0].decode()
    assert json.loads(records.redis.get(f"rollcall:job:{member}"))["type"] == "session_frame", (
        "session frames count as the key's work in flight"
    )

    bob_url = holding_camera.url()
    burst = bob.post(
        "/v1/attendance-sessions",
        json={"roster_id": roster, "cameras": [bob_url], "burst": {"frames": 2, "over_s": 2}},
    )
    assert burst.status_code == 201, burst.get_json()
    bob_session = burst.get_json()["id"]
    wait_until(
        lambda: bob.get(f"/v1/attendance-sessions/{bob_session}").get_json()["status"] == "finished",
        120,
        "bob's burst to finish",
    )
    bob_camera = bob_url.removeprefix("http://").split("/")[0]
    waited = frames_ahead_of(worker, bob_session, bob_camera, alice_camera)
    assert len(waited) == 2 and max(waited) <= SESSION_CAP + 1, f"bob's frames waited behind {waited}"

    before = len(frame_lines(worker, alice_camera))
    photo = (shared_dir() / "datasets/facebank/obama/obama.jpg").read_bytes()
    enrolled = admin.post(f"/v1/people/{person}/faces", data={"image": (io.BytesIO(photo), "obama.jpg")})
    assert enrolled.status_code == 201, enrolled.get_json()
    behind = len(frame_lines(worker, alice_camera)) - before
    assert behind <= 2, f"the enrolment waited for {behind} of alice's frames"

    # Stop while a tick's two frames are in flight: one running, one still queued.
    wait_until(
        lambda: records.redis.zcard(f"rollcall:inflight-frames:{owner}") == SESSION_CAP, 30, "frames queued"
    )
    in_flight = {raw.decode() for raw in records.redis.zrange(f"rollcall:inflight-frames:{owner}", 0, -1)}
    for session_id in alice_sessions:
        assert alice.post(f"/v1/attendance-sessions/{session_id}/stop").status_code == 200
    assert records.redis.zcard(f"rollcall:inflight:{owner}") == 0, "a stopped session's frames count no more"

    def outcomes() -> dict[str, str]:
        return {line["job_id"]: line["outcome"] for line in frame_lines(worker, alice_camera)}

    wait_until(lambda: in_flight <= set(outcomes()), 60, "the frames in flight at the stop to end")
    ended = [outcomes()[job_id] for job_id in in_flight]
    assert ended.count("succeeded") <= 1 and ended.count("revoked") >= 1, f"at the stop: {ended}"

    def alice_frame_errors() -> set[str]:
        """The error codes of alice's recorded frames: ticks refused over her limits, frames dropped."""
        codes = set()
        for session_id in alice_sessions:
            for tick in alice.get(f"/v1/attendance-sessions/{session_id}/report").get_json()["ticks"]:
                codes |= {frame["error"]["code"] for frame in tick["frames"] if frame.get("error")}
        return codes

    wait_until(
        lambda: {"too_many_jobs_in_flight", "job_revoked"} <= alice_frame_errors(),
        30,
        "alice's ticks recorded",
    )
    report.setdefault("fairness", {})["sessions"] = {
        "live_sessions_limit": 2,
        "queued_frames_limit": SESSION_CAP,
        "bob_frames_waited_behind": waited,
        "enrolment_waited_behind": behind,
        "frames_at_stop": sorted(ended),
        "alice_frame_errors": sorted(alice_frame_errors()),
    }
