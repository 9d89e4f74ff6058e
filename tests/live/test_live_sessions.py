"""Attendance sessions over streaming cameras, with real parts: two GStreamer RTSP cameras registered through
the real API, a stream reader in this process running the real ``LiveProcessor`` (real detector and
embedder, the people enrolled in the system's facebank) with the readers' ``EvidenceSink``, and a real
worker process running the session's ticks against the system's Redis and database.

What a user would notice: the session keeps its cameras live while it runs and lets them go after;
people in view for long enough are present, with first and last seen and their camera; a person
identified only for a moment (their camera went down) is absent, with the few seconds they were seen;
a face nobody enrolled is "unknown person 1" with a best face that enrols as a new person.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import redis

from benchmarks import live_scenes
from benchmarks.camera_servers import GstRtspCamera
from facebank.store import Facebank
from live import keys
from live.demand import Demand
from live.evidence import EvidenceSink, TrackEvidence, session_watcher
from live.feed import FeedConfig
from live.processor import LiveProcessor
from live.reader import Reader, ReaderConfig
from live.unknown_tracks import UnknownTracks, UnknownTrackSink
from ml.pipeline import FacePipeline
from recognition.snapshot import Snapshots
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist
from tests.conftest import ADMIN_KEY, JOBS_KEY, System, wait_until
from tests.live.conftest import live_params
from tests.sources.camera_server import closed_port

pytestmark = pytest.mark.integration
FPS = 5.0
OTHER_KEY = "other-jobs-key-0123456789"  # a second non-admin key: it must not see the first one's session


@dataclass
class LiveSystem:
    system: System
    people: dict[str, int]
    store: redis.Redis  # the system's result backend: where live cameras are kept
    worker_log: Path


def camera_photo(scene: live_scenes.Scene, folder: Path) -> Path:
    path = folder / f"{scene.name}.jpg"
    cv2.imwrite(str(path), scene.base)
    return path


@pytest.fixture(scope="module")
def live_system(system_factory: Any, pipe: FacePipeline) -> Iterator[LiveSystem]:
    keys_of_roles = f"{ADMIN_KEY}:admin,{JOBS_KEY}:jobs,{OTHER_KEY}:jobs"
    # The room's faces are 44–60 px, softened by H.264 and a little turned: enrolment's own gate (64 px,
    # sharpness 50, yaw 0.4, roll 30°) is set to the live identification gate (40 px, 20, 0.5, 35°), so a
    # face good enough to be embedded live can be enrolled (docs/live.md, "Unknown people").
    system = system_factory(
        "live-sessions",
        ROLLCALL_API_KEYS=keys_of_roles,
        ROLLCALL_ENROL_MIN_FACE_PX="40",
        ROLLCALL_ENROL_MIN_SHARPNESS="20",
        ROLLCALL_ENROL_MAX_YAW="0.5",
        ROLLCALL_ENROL_MAX_ROLL_DEG="35",
    )
    facebank = Facebank.from_url(system.env["ROLLCALL_DATABASE_URL"])
    people = live_scenes.enrol_shared_people(pipe, facebank)
    facebank.close()
    worker = system.worker()
    store = redis.Redis.from_url(system.env["ROLLCALL_RESULT_BACKEND"])
    yield LiveSystem(system, people, store, worker.log_path)
    store.close()


def start_reader(live: LiveSystem, pipe: FacePipeline, urls: dict[str, str]) -> Reader:
    """A stream reader of the system, in this process, with the real processor and the evidence sink."""
    facebank = Facebank.from_url(live.system.env["ROLLCALL_DATABASE_URL"])
    snapshots = Snapshots(
        facebank,
        pipe.embedder.name,
        pipe.embedder.version,
        pipe.device,
        None,
        pipe.embedder.default_threshold,
    )
    feed = FeedConfig(
        reader_id="reader-live-sessions",
        fps=FPS,
        reconnect_max_s=2.0,
        status_ttl_s=3.0,
        allowlist=CameraAllowlist.parse("127.0.0.1/32"),
        limits=FetchLimits(
            connect_timeout_s=2.0, read_timeout_s=3.0, total_s=5.0, max_bytes=5_000_000, retries=0
        ),
    )
    config = ReaderConfig(
        feed=feed, lease_ttl_s=3.0, max_cameras=0, frame_ttl_s=3.0, frame_max_bytes=2_000_000
    )
    return Reader(
        live.store,
        config,
        lambda name: CameraEndpoint(urls[name]),
        processors=lambda camera: LiveProcessor(camera, pipe, snapshots.take, live_params(), FPS),
        sinks=[
            EvidenceSink(TrackEvidence(live.store, keep_s=600, max_tracks=1000)),
            UnknownTrackSink(UnknownTracks(live.store, keep_s=600, max_tracks=200)),
        ],
    ).start()


def test_a_session_over_rtsp_cameras_counts_people_present_from_track_evidence(
    live_system: LiveSystem, pipe: FacePipeline, tmp_path: Path
) -> None:
    # room1: Obama, Biden and a girl nobody enrolled, all along; room2: Kit and Rose, until it goes down.
    room1 = GstRtspCamera(camera_photo(live_scenes.still_group(1), tmp_path)).start()
    room2 = GstRtspCamera(camera_photo(live_scenes.photo_scene("kit_with_rose.jpg", {}, 1), tmp_path)).start()
    urls = {"room1": room1.url("/h264"), "room2": room2.url("/h264")}
    client = live_system.system.client()
    for name, url in urls.items():
        response = client.post("/v1/cameras", json={"name": name, "url": url})
        assert response.status_code == 201, response.get_json()
    people = live_system.people
    roster = client.post("/v1/rosters", json={"name": "live class", "person_ids": sorted(people.values())})
    assert roster.status_code == 201, roster.get_json()
    reader = start_reader(live_system, pipe, urls)
    demand = Demand(live_system.store)
    teacher = live_system.system.client(JOBS_KEY)
    try:
        created = teacher.post(
            "/v1/attendance-sessions",
            json={
                "roster_id": roster.get_json()["id"],
                "cameras": [{"camera": "room1"}, {"camera": "room2"}],
                "duration_s": 20,
                "interval_s": 2,
                "min_ticks": 4,  # present from 8 s of identified tracks
            },
        )
        assert created.status_code == 201, created.get_json()
        session = created.get_json()
        assert session["required_seconds"] == 8.0
        wait_until(lambda: set(demand.live_cameras()) == {"room1", "room2"}, 10, "the session's cameras live")
        evidence = TrackEvidence(live_system.store, keep_s=600, max_tracks=1000)
        kit = people["kit_harington"]
        wait_until(
            lambda: any(e.person_id == kit for e in evidence.window("room2", 0, time.time() + 60)),
            30,
            "Kit to be identified on room2",
        )
        room2.stop()  # room2 goes down: Kit is seen no longer

        def state() -> dict[str, Any]:
            body: dict[str, Any] = client.get(f"/v1/attendance-sessions/{session['id']}").get_json()
            return body

        try:
            wait_until(
                lambda: state()["status"] == "finished" and state()["evidence_closed_at"] is not None,
                60,
                "the session to finish and read its last window",
            )
        except BaseException:  # pytest's failure: show why, the session's state and the worker's log
            print(state(), live_system.worker_log.read_text()[-6000:])
            raise
        wait_until(lambda: demand.live_cameras() == [], 5, "the session's cameras to be let go")
        assert live_system.store.zscore(keys.watchers("room1"), session_watcher(session["id"])) is None
    finally:
        reader.stop()
        room1.stop()
        room2.stop()

    report = client.get(f"/v1/attendance-sessions/{session['id']}/report").get_json()
    by_name = {entry["person"]["display_name"]: entry for entry in report["present"] + report["absent"]}
    start, end = report["session"]["start_at"], report["session"]["end_at"]
    assert {entry["person"]["display_name"] for entry in report["present"]} == {"obama", "biden"}
    for name in ("obama", "biden"):
        entry = by_name[name]
        assert entry["seconds_seen"] >= 8.0, entry
        assert entry["camera"] == "room1" and entry["best_camera"] == 0
        assert start <= entry["first_seen_at"] < entry["last_seen_at"] <= end
        assert entry["ticks_seen"] == 0, "evidence counts in seconds, not in ticks"
    kit_entry = by_name["kit_harington"]
    assert not kit_entry["present"] and 0 < kit_entry["seconds_seen"] < 8.0, kit_entry
    assert kit_entry["camera"] == "room2"
    assert (by_name["alex_lacamoire"]["present"], by_name["alex_lacamoire"]["seconds_seen"]) == (False, None)
    live_frames = [frame for tick in report["ticks"] for frame in tick["frames"]]
    assert all(frame["live"] for frame in live_frames) and len(live_frames) == 2 * 10
    room1_stats, room2_stats = report["session"]["cameras"]
    assert room1_stats["failures"] <= 1, room1_stats  # the first window may end before its reader starts
    assert room2_stats["failures"] >= 3 and room2_stats["last_error"]["code"] == "camera_unreachable", (
        "the windows after room2 went down are its reader's camera error, not an empty room"
    )
    csv = client.get(f"/v1/attendance-sessions/{session['id']}/report?format=csv").get_data(as_text=True)
    assert csv.splitlines()[0].endswith(",camera,seconds_seen")

    # The girl nobody enrolled is unknown person 1, with her best face; enrolling it makes her known.
    (stranger,) = report["unknown_people"]
    assert (stranger["number"], stranger["label"], stranger["camera"]) == (1, "unknown person 1", "room1")
    assert stranger["seen"] >= 1 and stranger["seconds"] > 0
    assert start <= stranger["first_seen_at"] < stranger["last_seen_at"]
    face = client.get(stranger["face_url"])
    assert (face.status_code, face.mimetype) == (200, "image/jpeg")
    image = cv2.imdecode(np.frombuffer(face.get_data(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and min(image.shape[:2]) >= 40
    assert teacher.get(stranger["face_url"]).status_code == 200
    other = live_system.system.client(OTHER_KEY)
    assert other.get(stranger["face_url"]).status_code == 404, "another key's session is not found"
    assert client.get(f"/v1/attendance-sessions/{session['id']}/unknown-people/2/face").status_code == 404
    person = client.post("/v1/people", json={"display_name": "new student"})
    assert person.status_code == 201, person.get_json()
    enrolled = client.post(
        f"/v1/people/{person.get_json()['id']}/faces",
        json={"image_b64": base64.b64encode(face.get_data()).decode()},
    )
    assert enrolled.status_code == 201, enrolled.get_json()
    # The module's facebank as the test found it: the girl is a stranger again for the tests after it.
    assert client.delete(f"/v1/people/{person.get_json()['id']}").status_code == 204


def test_a_session_keeps_its_rtsp_camera_live_from_its_first_tick_until_it_is_stopped(
    live_system: LiveSystem,
) -> None:
    client = live_system.system.client()
    url = f"rtsp://127.0.0.1:{closed_port()}/h264"  # nobody reads it here: only the demand is looked at
    response = client.post("/v1/cameras", json={"name": "room3", "url": url})
    assert response.status_code == 201, response.get_json()
    roster = client.post(
        "/v1/rosters", json={"name": "stopped class", "person_ids": [live_system.people["obama"]]}
    )
    assert roster.status_code == 201, roster.get_json()
    created = client.post(
        "/v1/attendance-sessions",
        json={
            "roster_id": roster.get_json()["id"],
            "cameras": [{"camera": "room3"}],
            "duration_s": 600,
            "interval_s": 60,
        },
    )
    assert created.status_code == 201, created.get_json()
    session_id = created.get_json()["id"]
    demand = Demand(live_system.store)
    wait_until(lambda: "room3" in demand.live_cameras(), 30, "the first tick to keep room3 live")
    watchers = live_system.store.zrange(keys.watchers("room3"), 0, -1, withscores=True)
    assert [name for name, _ in watchers] == [session_watcher(session_id).encode()]
    (_, until_ms), now_s = watchers[0], time.time()
    assert 60 < until_ms / 1000 - now_s <= 60 + 30 + 2, "until the next tick is due, and 30 s more"

    stopped = client.post(f"/v1/attendance-sessions/{session_id}/stop")
    assert stopped.status_code == 200 and stopped.get_json()["status"] == "stopped"
    assert "room3" not in demand.live_cameras(), "a stopped session lets its camera go at once"


def test_a_stopped_session_keeps_what_its_cameras_saw_until_the_stop_and_names_its_unknown_faces(
    live_system: LiveSystem, pipe: FacePipeline, tmp_path: Path
) -> None:
    """Stopped before its second tick, a session's only evidence is its last window (first tick to the
    stop): it is read once the reader lets the camera go, and the stranger becomes unknown person 1."""
    room = GstRtspCamera(camera_photo(live_scenes.still_group(1), tmp_path)).start()
    urls = {"room4": room.url("/h264")}
    client = live_system.system.client()
    response = client.post("/v1/cameras", json={"name": "room4", "url": urls["room4"]})
    assert response.status_code == 201, response.get_json()
    obama = live_system.people["obama"]
    roster = client.post("/v1/rosters", json={"name": "stopped early", "person_ids": [obama]})
    assert roster.status_code == 201, roster.get_json()
    reader = start_reader(live_system, pipe, urls)
    evidence = TrackEvidence(live_system.store, keep_s=600, max_tracks=1000)
    events = live_system.store.pubsub(ignore_subscribe_messages=True)
    events.subscribe(keys.events_channel("room4"))
    try:
        created = client.post(
            "/v1/attendance-sessions",
            json={
                "roster_id": roster.get_json()["id"],
                "cameras": [{"camera": "room4"}],
                "duration_s": 300,
                "interval_s": 60,  # tick 1 is a minute away: everything seen is in the window cut by the stop
            },
        )
        assert created.status_code == 201, created.get_json()
        session_id = created.get_json()["id"]

        def seen_for_s() -> float:
            spans = [e for e in evidence.window("room4", 0, time.time() + 60) if e.person_id == obama]
            return max((e.last_seen - e.first_seen for e in spans), default=0.0)

        stranger_embedded = False

        def stranger_was_embedded() -> bool:  # the girl's track has an embedding: it will be grouped
            nonlocal stranger_embedded
            while (message := events.get_message(timeout=0.05)) is not None:
                tracks = json.loads(message["data"])["tracks"]
                stranger_embedded |= any(t["person_id"] is None and t["embedded"] for t in tracks)
            return stranger_embedded

        wait_until(stranger_was_embedded, 40, "the stranger's track to be embedded on room4")
        wait_until(lambda: seen_for_s() >= 4.0, 40, "Obama to be tracked for 4 s on room4")
        stopped = client.post(f"/v1/attendance-sessions/{session_id}/stop")
        assert stopped.status_code == 200 and stopped.get_json()["status"] == "stopped"

        def state() -> dict[str, Any]:
            body: dict[str, Any] = client.get(f"/v1/attendance-sessions/{session_id}").get_json()
            return body

        wait_until(lambda: state()["evidence_closed_at"] is not None, 30, "the stopped session's close")
    finally:
        events.close()
        reader.stop()
        room.stop()

    report = client.get(f"/v1/attendance-sessions/{session_id}/report").get_json()
    (entry,) = report["absent"]  # 60 s of evidence make one present; it was stopped well before
    assert entry["person"]["display_name"] == "obama" and entry["camera"] == "room4"
    assert entry["seconds_seen"] >= 3.0, entry
    (stranger,) = report["unknown_people"]
    assert (stranger["label"], stranger["camera"]) == ("unknown person 1", "room4")
    assert client.get(stranger["face_url"]).status_code == 200
