"""Rosters in attendance jobs, one-to-one naming, and attendance sessions through real workers.

The shared facebank is enrolled over the API once for the module; cameras are loopback HTTP
servers over the shared photos (``camera``) or a tiny one in this file whose frame changes
from one request to the next.
"""

from __future__ import annotations

import base64
import csv
import http.server
import io
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import JOBS_KEY, System, WorkerProcess, migrated_app, wait_for_job, wait_until
from tests.integration.test_recognition import enrol_folder
from tests.shared_data import shared_dir
from tests.sources.camera_server import closed_port

pytestmark = pytest.mark.integration
PROBES = "datasets/facebank_probe"
ENDED = ("finished", "stopped")


@dataclass
class Classroom:
    """A system with the shared facebank enrolled ({folder name: person id}) and its running workers."""

    system: System
    people: dict[str, int]
    workers: list[WorkerProcess]


@pytest.fixture(scope="module")
def classroom(system_factory: Any) -> Iterator[Classroom]:
    system = system_factory("sessions")
    workers = [system.worker()]
    client = system.client()
    people = {
        folder.name: enrol_folder(client, folder)["id"]
        for folder in sorted((shared_dir() / "datasets/facebank").iterdir())
    }
    yield Classroom(system, people, workers)
    for worker in workers:
        worker.stop()


def make_roster(client: Any, name: str, person_ids: list[int]) -> int:
    response = client.post("/v1/rosters", json={"name": name, "person_ids": person_ids})
    assert response.status_code == 201, response.get_json()
    roster_id: int = response.get_json()["id"]
    return roster_id


def start_session(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/attendance-sessions", json=body)
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"] == f"/v1/attendance-sessions/{response.get_json()['id']}"
    session: dict[str, Any] = response.get_json()
    return session


def session_state(client: Any, session_id: int) -> dict[str, Any]:
    response = client.get(f"/v1/attendance-sessions/{session_id}")
    assert response.status_code == 200, response.get_json()
    state: dict[str, Any] = response.get_json()
    return state


def wait_for_session(client: Any, session_id: int, timeout: float = 240) -> dict[str, Any]:
    wait_until(
        lambda: session_state(client, session_id)["status"] in ENDED,
        timeout,
        f"attendance session {session_id} to end",
    )
    return session_state(client, session_id)


def by_name(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["person"]["display_name"]: entry for entry in state["people"]}


def run_attendance(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs/attendance", json=body)
    assert response.status_code == 202, response.get_json()
    job = wait_for_job(client, response.get_json()["job_id"])
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


class ChangingCamera:
    """A loopback camera that serves ``first`` to the first request and ``then`` to every later one."""

    def __init__(self, first: bytes, then: bytes) -> None:
        self.frames = [first, then]
        self.requests = 0
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = camera.frames[min(camera.requests, 1)]
                camera.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/snapshot.jpg"

    def __enter__(self) -> ChangingCamera:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- attendance jobs ---


def test_attendance_job_by_roster_id_names_members_and_lists_absentees(
    classroom: Classroom, camera: str
) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "biden and alex", [people["biden"], people["alex_lacamoire"]])

    result = run_attendance(client, url=f"{camera}/{PROBES}/two_people.jpg", roster_id=roster)

    assert [entry["person"]["display_name"] for entry in result["present"]] == ["biden"]
    assert result["present"][0]["score"] >= result["threshold"]
    assert [person["display_name"] for person in result["absent"]] == ["alex_lacamoire"]
    assert len(result["unknown_faces"]) == 1, (
        "Obama is in the frame but not on the roster: unknown, not misnamed"
    )
    unknown_roster = client.post("/v1/jobs/attendance", json={"url": f"{camera}/x.jpg", "roster_id": 10**9})
    assert (unknown_roster.status_code, unknown_roster.get_json()["error"]["code"]) == (
        404,
        "roster_not_found",
    )
    both = client.post(
        "/v1/jobs/attendance", json={"url": f"{camera}/x.jpg", "roster_id": roster, "roster": [1]}
    )
    assert both.status_code == 400


def test_two_faces_of_one_person_in_a_frame_name_them_once(classroom: Classroom) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    photo = cv2.imread(str(shared_dir() / PROBES / "obama1.jpg"))
    assert photo is not None
    ok, twice = cv2.imencode(".jpg", np.hstack([photo, photo]))
    assert ok
    frame = base64.b64encode(twice.tobytes()).decode()

    result = run_attendance(client, image_b64=frame)

    assert [entry["person"]["id"] for entry in result["present"]] == [people["obama"]]
    assert len(result["unknown_faces"]) == 1, "the second copy must stay unknown, never a second Obama"
    # Both faces match Obama on their own: the one-to-one assignment is what kept one of them unknown.
    other = result["unknown_faces"][0]
    identify = client.post("/v1/jobs/identify", json={"image_b64": frame, "landmarks": other["landmarks"]})
    alone = wait_for_job(client, identify.get_json()["job_id"])["result"]
    assert alone["person"]["id"] == people["obama"]
    assert alone["score"] >= alone["threshold"]


# --- sessions ---


def test_session_requests_are_validated(classroom: Classroom, camera: str) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "validation", [people["obama"]])
    good = {
        "roster_id": roster,
        "cameras": [f"{camera}/{PROBES}/obama1.jpg"],
        "duration_s": 10,
        "interval_s": 2,
    }
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    changes: tuple[dict[str, Any], ...] = (
        {"interval_s": 0.5},
        {"interval_s": None},
        {"end_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()},  # and duration_s: both
        {"duration_s": None},
        {"min_ticks": 6},  # only 5 ticks planned
        {"cameras": []},
        {"cameras": ["ftp://127.0.0.1/x.jpg"]},
        {"start_at": past},
        {"start_at": "2030-01-01T08:00:00"},  # no time zone
        {"burst": {"frames": 3, "over_s": 1}},  # a burst has no duration or interval
        {"extra": True},
    )
    for change in changes:
        body = {key: value for key, value in {**good, **change}.items() if value is not None}
        response = client.post("/v1/attendance-sessions", json=body)
        assert response.status_code == 400, (change, response.get_json())
        assert response.get_json()["error"]["code"] == "invalid_input"
    unknown = client.post("/v1/attendance-sessions", json={**good, "roster_id": 10**9})
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "roster_not_found")
    missing = client.get("/v1/attendance-sessions/999999")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "session_not_found")


def test_a_scheduled_session_hides_camera_credentials_and_can_be_stopped_before_it_starts(
    classroom: Classroom, camera: str
) -> None:
    system, people = classroom.system, classroom.people
    client = system.client(JOBS_KEY)  # sessions need a jobs key, not an admin one
    roster = make_roster(system.client(), "tomorrow", [people["obama"]])
    port = camera.rsplit(":", 1)[1]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()

    session = start_session(
        client,
        roster_id=roster,
        start_at=tomorrow,
        duration_s=3600,
        interval_s=60,
        cameras=[f"http://user:secret@127.0.0.1:{port}/{PROBES}/obama1.jpg?token=abc"],
    )

    assert (session["status"], session["ticks"]["planned"], session["ticks"]["started"]) == (
        "scheduled",
        60,
        0,
    )
    assert session["cameras"][0]["url"] == f"http://127.0.0.1:{port}/{PROBES}/obama1.jpg"
    stopped = client.post(f"/v1/attendance-sessions/{session['id']}/stop")
    assert stopped.status_code == 200
    assert stopped.get_json()["status"] == "stopped" and stopped.get_json()["ended_at"]


def test_stop_ends_a_running_session(classroom: Classroom, camera: str) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "stop", [people["obama"]])
    session = start_session(
        client, roster_id=roster, cameras=[f"{camera}/{PROBES}/obama1.jpg"], duration_s=300, interval_s=1
    )
    wait_until(lambda: session_state(client, session["id"])["ticks"]["done"] >= 1, 120, "the first tick")

    stopped = client.post(f"/v1/attendance-sessions/{session['id']}/stop").get_json()

    assert stopped["status"] == "stopped"
    # A tick claimed just before the stop is still recorded; after it, nothing starts.
    wait_until(
        lambda: (
            session_state(client, session["id"])["ticks"]["done"]
            == session_state(client, session["id"])["ticks"]["started"]
        ),
        60,
        "the tick in flight",
    )
    settled = session_state(client, session["id"])
    assert settled["ticks"]["started"] <= stopped["ticks"]["started"] + 1
    threading.Event().wait(3)  # three intervals in which a running session would have ticked
    later = session_state(client, session["id"])
    assert (later["status"], later["ticks"]) == ("stopped", settled["ticks"])
    assert by_name(later)["obama"]["present"]
    again = client.post(f"/v1/attendance-sessions/{session['id']}/stop").get_json()
    assert (again["status"], again["ended_at"]) == ("stopped", stopped["ended_at"])


@pytest.fixture(scope="module")
def burst(classroom: Classroom) -> Iterator[tuple[dict[str, Any], int]]:
    """A finished burst of 2 frames over 1 s whose camera shows Obama and Biden, then Obama alone."""
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "burst", [people["obama"], people["biden"]])
    first = (shared_dir() / PROBES / "two_people.jpg").read_bytes()
    then = (shared_dir() / PROBES / "obama1.jpg").read_bytes()
    with ChangingCamera(first, then) as changing:
        session = start_session(
            client, roster_id=roster, cameras=[changing.url], burst={"frames": 2, "over_s": 1}
        )
        assert (session["kind"], session["interval_s"], session["ticks"]["planned"]) == ("burst", 0.5, 2)
        yield wait_for_session(client, session["id"]), changing.requests


def test_burst_forgives_a_frame_that_misses_a_face(burst: tuple[dict[str, Any], int]) -> None:
    state, requests = burst

    assert requests == 2
    assert (state["status"], state["ticks"]["done"], state["min_ticks"]) == ("finished", 2, 1)
    seen = by_name(state)
    assert (seen["obama"]["ticks_seen"], seen["obama"]["present"]) == (2, True)
    assert (seen["biden"]["ticks_seen"], seen["biden"]["present"]) == (1, True), "seen in one frame of two"
    assert seen["biden"]["first_seen_at"] == seen["biden"]["last_seen_at"]
    assert seen["biden"]["best_score"] >= 0.5


def test_report_comes_as_json_or_csv(classroom: Classroom, burst: tuple[dict[str, Any], int]) -> None:
    system, people = classroom.system, classroom.people
    client = system.client(JOBS_KEY)
    state, _ = burst
    url = f"/v1/attendance-sessions/{state['id']}/report"

    report = client.get(url).get_json()
    as_csv = client.get(url, query_string={"format": "csv"})
    by_accept = client.get(url, headers={"Accept": "text/csv"})

    assert report["session"]["status"] == "finished"
    assert {entry["person"]["display_name"] for entry in report["present"]} == {"obama", "biden"}
    assert report["absent"] == []
    assert [tick["state"] for tick in report["ticks"]] == ["done", "done"]
    assert [len(tick["frames"]) for tick in report["ticks"]] == [1, 1]
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    assert "attachment" in as_csv.headers["Content-Disposition"]
    assert by_accept.get_data() == as_csv.get_data()
    rows = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert {row["display_name"]: (row["present"], row["ticks_seen"]) for row in rows} == {
        "obama": ("yes", "2"),
        "biden": ("yes", "1"),
    }
    assert {int(row["person_id"]) for row in rows} == {people["obama"], people["biden"]}
    assert client.get(url, query_string={"format": "xml"}).status_code == 400


def test_session_over_two_cameras_survives_a_worker_restart(classroom: Classroom, camera: str) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "whole class", sorted(people.values()))
    cameras = [f"{camera}/{PROBES}/two_people.jpg", f"{camera}/{PROBES}/kit_with_rose.jpg"]
    session = start_session(
        client, name="period 1", roster_id=roster, cameras=cameras, duration_s=10, interval_s=2, min_ticks=3
    )
    assert session["ticks"]["planned"] == 5
    wait_until(lambda: session_state(client, session["id"])["ticks"]["done"] >= 1, 120, "the first tick")

    for worker in classroom.workers:
        worker.stop(signal.SIGTERM)  # warm shutdown: the task in hand finishes, held etas go back to Redis
    replacement = system.worker("after-restart")
    classroom.workers.append(replacement)
    state = wait_for_session(client, session["id"])

    assert state["status"] == "finished"
    assert state["ticks"] == {"planned": 5, "started": 5, "done": 5, "missed": 0, "failed": 0}
    assert f"session {session['id']} tick" in replacement.log(), "the new worker carried the session on"
    seen = by_name(state)
    for name, camera_index in (("obama", 0), ("biden", 0), ("kit_harington", 1), ("rose_leslie", 1)):
        entry = seen[name]
        assert (entry["ticks_seen"], entry["frames_seen"], entry["present"]) == (5, 5, True), name
        assert entry["best_camera"] == camera_index, name
        assert state["start_at"] <= entry["first_seen_at"] < entry["last_seen_at"], name
    assert (seen["alex_lacamoire"]["ticks_seen"], seen["alex_lacamoire"]["present"]) == (0, False)
    assert [(c["frames"], c["failures"]) for c in state["cameras"]] == [(5, 0), (5, 0)]
    # The state is in the database: a freshly started API reads the same session.
    from settings import Settings

    fresh = migrated_app(
        Settings.model_validate({k.removeprefix("ROLLCALL_").lower(): v for k, v in system.env.items()})
    )
    assert (
        fresh.test_client()
        .get(f"/v1/attendance-sessions/{session['id']}", headers={"X-API-Key": JOBS_KEY})
        .get_json()
        == state
    )


def test_a_session_over_a_digest_camera_and_an_rtsp_camera_sees_who_they_show(
    classroom: Classroom, apache_camera: Any, gst_camera: Any
) -> None:
    """Both real cameras show Obama (the Apache camera's snapshot behind Digest, GStreamer's H.264 stream)."""
    from benchmarks.camera_servers import CAMERA_PASSWORD, CAMERA_USER, HIKVISION

    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "real cameras", [people["obama"]])
    cameras = [
        apache_camera.url(HIKVISION, credentials=(CAMERA_USER, CAMERA_PASSWORD)),
        gst_camera.url("/h264"),
    ]
    session = start_session(client, roster_id=roster, cameras=cameras, burst={"frames": 2, "over_s": 1})
    state = wait_for_session(client, session["id"])

    assert (state["status"], state["ticks"]["done"]) == ("finished", 2)
    assert [(camera["frames"], camera["failures"]) for camera in state["cameras"]] == [(2, 0), (2, 0)]
    assert (by_name(state)["obama"]["ticks_seen"], by_name(state)["obama"]["present"]) == (2, True)
    assert CAMERA_PASSWORD not in str(state)


# --- registered cameras ---


def test_a_session_over_registered_cameras_reports_each_cameras_failed_ticks(
    classroom: Classroom, camera: str
) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "registered", [people["obama"], people["biden"]])
    for name, url in (
        ("sess-good", f"{camera}/{PROBES}/two_people.jpg"),
        ("sess-dead", f"http://127.0.0.1:{closed_port()}/snap.jpg"),
    ):
        assert client.post("/v1/cameras", json={"name": name, "url": url}).status_code == 201

    session = start_session(
        client,
        roster_id=roster,
        cameras=[{"camera": "sess-good"}, {"camera": "sess-dead"}],
        burst={"frames": 2, "over_s": 1},
    )
    state = wait_for_session(client, session["id"])

    assert (state["status"], state["ticks"]["done"], state["ticks"]["failed"]) == ("finished", 2, 0)
    good, dead = state["cameras"]
    assert (good["name"], good["url"], good["frames"], good["failed_ticks"]) == ("sess-good", None, 2, 0)
    assert (dead["name"], dead["frames"], dead["failed_ticks"]) == ("sess-dead", 0, 2)
    assert dead["last_error"]["code"] == "camera_unreachable"
    csv_text = client.get(f"/v1/attendance-sessions/{session['id']}/report?format=csv").get_data(as_text=True)
    rows = {row["display_name"]: row for row in csv.DictReader(io.StringIO(csv_text))}
    assert {name: (row["present"], row["camera"]) for name, row in rows.items()} == {
        "obama": ("yes", "sess-good"),
        "biden": ("yes", "sess-good"),
    }


def test_a_session_whose_only_camera_failed_every_tick_does_not_look_clean(classroom: Classroom) -> None:
    system, people = classroom.system, classroom.people
    client = system.client()
    roster = make_roster(client, "dark room", [people["obama"]])
    dead = {"name": "sess-dark", "url": f"http://127.0.0.1:{closed_port()}/snap.jpg"}
    assert client.post("/v1/cameras", json=dead).status_code == 201

    session = start_session(
        client, roster_id=roster, cameras=[{"camera": "sess-dark"}], burst={"frames": 2, "over_s": 1}
    )
    state = wait_for_session(client, session["id"])
    report = client.get(f"/v1/attendance-sessions/{session['id']}/report").get_json()

    assert (state["status"], state["ticks"]["done"], state["ticks"]["failed"]) == ("finished", 0, 2)
    assert state["cameras"][0]["failed_ticks"] == 2
    assert [tick["state"] for tick in report["ticks"]] == ["failed", "failed"]
    assert report["session"]["cameras"][0]["failed_ticks"] == 2
    assert report["absent"][0]["person"]["display_name"] == "obama"


def test_a_session_naming_an_unknown_camera_is_refused(classroom: Classroom) -> None:
    client = classroom.system.client()
    roster = make_roster(client, "nobody's camera", [classroom.people["obama"]])

    response = client.post(
        "/v1/attendance-sessions",
        json={"roster_id": roster, "cameras": [{"camera": "nowhere"}], "burst": {"frames": 2, "over_s": 1}},
    )

    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "camera_not_found")
