"""The page's attendance-session report in Debian's Chromium: present and absent people, and an unknown
person's best face enrolled as a new person through the real API and worker.

The session's unknown tracks are written into the system's real database through the store the workers
use (``AttendanceSessions.add_unknown_tracks``), as a session over a live camera leaves them (the live
path that produces them is tested end to end in ``tests/live/test_live_sessions.py``); the face is a
probe photo of someone nobody enrolled.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest

from facebank.records import SessionUnknownTrack
from facebank.sessions import AttendanceSessions
from facebank.store import Facebank
from tests.browser.conftest import PROBES, Site, open_page, screenshot
from tests.shared_data import shared_dir

pytestmark = pytest.mark.browser


def unknown_session(site: Site) -> int:
    """A session over the classroom camera whose report has one unknown person seen in two tracks."""
    client = site.system.client()
    roster = client.post(
        "/v1/rosters",
        json={
            "name": "session page",
            "person_ids": [site.people["obama"]["id"], site.people["rose_leslie"]["id"]],
        },
    )
    assert roster.status_code == 201, roster.get_json()
    created = client.post(
        "/v1/attendance-sessions",
        json={
            "roster_id": roster.get_json()["id"],
            "cameras": [site.cameras["classroom"]],
            "duration_s": 2,
            "interval_s": 1,
        },
    )
    assert created.status_code == 201, created.get_json()
    session_id: int = created.get_json()["id"]
    photo = cv2.imread(str(shared_dir() / PROBES / "lin-manuel-miranda.png"))
    face = cv2.imencode(".jpg", photo)[1].tobytes()
    now = datetime.now(UTC)
    facebank = Facebank.from_url(site.system.env["ROLLCALL_DATABASE_URL"])
    try:
        store = AttendanceSessions(facebank.engine)
        tracks = [
            SessionUnknownTrack(
                0, f"t:{n}", now + timedelta(seconds=n), now + timedelta(seconds=n + 0.5), vectors, face
            )
            for n, vectors in enumerate([np.eye(2, 128, dtype=np.float32)] * 2)
        ]
        assert store.add_unknown_tracks(session_id, tracks, max_tracks=10) == 2
        row_ids = [row_id for row_id, _ in store.unknown_track_embeddings(session_id)]
        store.set_unknown_groups(session_id, dict.fromkeys(row_ids, 1))
    finally:
        facebank.close()
    return session_id


def test_a_session_report_lists_people_and_enrols_an_unknown_face(page: Any, site: Site) -> None:
    session_id = unknown_session(site)
    open_page(page, site)
    page.click("#session-button")
    page.fill("#session-id", str(session_id))
    page.click("#session-form button[type=submit]")
    page.wait_for_selector("#session-unknown .unknown-person")
    page.wait_for_function(
        "() => { const img = document.querySelector('#session-unknown img');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    names = page.locator("#session-table td:nth-child(2)").all_inner_texts()
    assert sorted(names) == ["obama", "rose_leslie"]
    assert page.inner_text("#session-unknown .unknown-label") == "unknown person 1, seen 2 times"
    assert "1 unknown" in page.inner_text("#session-status")
    screenshot(page, "session-report.png")

    page.fill("#session-unknown input", "Lin-Manuel Miranda")
    page.click("#session-unknown button[type=submit]")
    page.wait_for_selector("#session-unknown .unknown-person[data-enrolled=true]")
    assert page.inner_text("#session-unknown .unknown-status") == "Enrolled as Lin-Manuel Miranda."
    found = site.system.client().get("/v1/people", query_string={"q": "Lin-Manuel"}).get_json()["items"]
    assert ("Lin-Manuel Miranda", 1) in [(p["display_name"], p["face_count"]) for p in found]
