"""The classroom page in a real headless Chromium, against the real system (API, worker, models, facebank).

Each test drives the page as a teacher would and checks what they would see: boxes over the
faces, the right names, the attendance roster and its CSV, enrolment from a click, the people
page, and clear errors when the camera is down or the key is wrong.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from tests.browser.conftest import PROBES, Site, open_page, screenshot
from tests.conftest import ADMIN_KEY, JOBS_KEY
from tests.shared_data import shared_dir

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ABSENT_FROM_CLASSROOM = {"alex_lacamoire", "kit_harington", "rose_leslie"}


def start_live(page: Any, camera: str) -> None:
    page.wait_for_selector(f"#camera-select option[value='{camera}']", state="attached")
    page.select_option("#camera-select", camera)
    page.click("#live-toggle")


def wait_for_boxes(page: Any, count: int) -> list[Any]:
    page.wait_for_function(
        "n => document.querySelectorAll('#stage .face-box').length === n", arg=count, timeout=90_000
    )
    return page.locator("#stage .face-box").all()


def pause_live(page: Any) -> None:
    page.click("#live-toggle")
    page.wait_for_function("() => document.querySelector('#live-state').dataset.state === 'idle'")


def identify(page: Any, box: Any) -> str:
    box.click()
    page.wait_for_function(
        "() => ['known', 'unknown', 'error'].includes(document.querySelector('#face-name').dataset.state)"
    )
    return str(page.inner_text("#face-name"))


def boxes_left_to_right(page: Any, count: int) -> list[Any]:
    boxes = wait_for_boxes(page, count)
    return sorted(boxes, key=lambda box: box.bounding_box()["x"])


def wait_for_names(page: Any, names: set[str]) -> None:
    """Until the live view's boxes carry ``names`` (from the camera's live events)."""
    page.wait_for_function(
        "names => names.every(n => [...document.querySelectorAll('#stage .face-box .tag')]"
        ".some(tag => tag.textContent === n))",
        arg=sorted(names),
        timeout=90_000,
    )


def test_live_view_draws_boxes_and_names_from_the_event_stream(page: Any, site: Site) -> None:
    frames = {"now": 0, "max": 0}
    posted_jobs: list[str] = []
    streams: list[Any] = []

    def started(request: Any) -> None:
        if request.url.endswith("/frame"):
            frames["now"] += 1
            frames["max"] = max(frames["max"], frames["now"])
        if request.method == "POST" and "/v1/jobs/" in request.url:
            posted_jobs.append(request.url)
        if "/events" in request.url:
            streams.append(request)

    def ended(request: Any) -> None:
        if request.url.endswith("/frame"):
            frames["now"] -= 1

    open_page(page, site)
    page.wait_for_selector("#camera-select option[value='classroom']", state="attached")
    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    start_live(page, "classroom")
    wait_for_boxes(page, 2)
    wait_for_names(page, {"obama", "biden"})
    assert re.fullmatch(r"\d+ ms", page.inner_text("#latency"))
    assert "live" in page.inner_text("#live-state")
    assert page.inner_text("#face-count") == "2 faces"
    assert page.inner_text("#updated").startswith("updated ")
    page.wait_for_function(  # the frame under the boxes refreshes by itself
        "n => performance.getEntriesByType('resource').filter(e => e.name.endsWith('/frame')).length >= n",
        arg=3,
    )
    screenshot(page, "live-view.png")
    pause_live(page)  # the boxes are redrawn with every event while live: measure them still
    frame = page.locator("#stage img").bounding_box()
    for box in wait_for_boxes(page, 2):  # every box lies on the frame, and is a plausible face size
        rect = box.bounding_box()
        assert frame["x"] <= rect["x"] and rect["x"] + rect["width"] <= frame["x"] + frame["width"] + 1
        assert frame["y"] <= rect["y"] and rect["y"] + rect["height"] <= frame["y"] + frame["height"] + 1
        assert 0.05 * frame["width"] < rect["width"] < 0.5 * frame["width"]
    assert posted_jobs == [], "the live view polled jobs instead of following the event stream"
    (stream,) = streams
    assert stream.url.endswith("/v1/cameras/classroom/events"), "no key (nor anything else) in its URL"
    assert stream.headers["x-api-key"] == ADMIN_KEY
    assert frames["max"] == 1, "the page asked for frames that overlapped"


def test_clicking_a_face_names_the_person(page: Any, site: Site) -> None:
    open_page(page, site)
    start_live(page, "classroom")
    wait_for_boxes(page, 2)
    pause_live(page)
    left, right = boxes_left_to_right(page, 2)
    assert identify(page, left) == "obama"
    assert re.search(r"score 0\.\d\d \(needs 0\.\d\d\)", page.inner_text("#face-score"))
    assert page.locator("#enrol-form").is_hidden(), "a known face must not offer enrolment"
    screenshot(page, "identify.png")
    assert identify(page, right) == "biden"


def test_attendance_lists_present_and_absent_people_and_exports_csv(page: Any, site: Site) -> None:
    open_page(page, site)
    start_live(page, "classroom")
    wait_for_boxes(page, 2)
    page.click("#attendance-button")  # on the frame on screen, while the live view goes on
    page.wait_for_selector("#attendance-table tbody tr")
    page.wait_for_function(
        "() => { const img = document.querySelector('#attendance-panel img');"
        " return img.complete && img.naturalWidth > 0; }"
    )
    pause_live(page)
    present = set(page.locator("#attendance-table tr[data-status=present] td:nth-child(2)").all_inner_texts())
    absent = set(page.locator("#attendance-table tr[data-status=absent] td:nth-child(2)").all_inner_texts())
    assert present == {"obama", "biden"}
    assert absent >= ABSENT_FROM_CLASSROOM and not absent & present
    assert page.locator("#attendance-table tr[data-status=unknown]").count() == 0
    assert "2 present" in page.inner_text("#attendance-status")
    assert page.locator("#attendance-panel .face-box.known").count() == 2
    screenshot(page, "attendance.png")
    with page.expect_download() as download_info:
        page.click("#attendance-csv")
    download = download_info.value
    assert re.fullmatch(r"attendance-[\dT-]+\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert {row["name"] for row in rows if row["status"] == "present"} == {"obama", "biden"}
    assert {row["name"] for row in rows if row["status"] == "absent"} == absent
    ids = {row["name"]: row["person_id"] for row in rows}
    assert ids["obama"] == str(site.people["obama"]["id"])


def test_enrolling_an_unknown_face_from_a_click_makes_it_known(page: Any, site: Site) -> None:
    open_page(page, site)
    start_live(page, "newcomer")
    (face,) = wait_for_boxes(page, 1)
    pause_live(page)
    assert identify(page, face) == "Unknown"
    page.wait_for_selector("#enrol-form", state="visible")
    page.wait_for_function("() => document.querySelectorAll('#enrol-person option').length >= 5")
    page.fill("#enrol-name", "Lin-Manuel Miranda")
    screenshot(page, "unknown-face.png")
    page.click("#enrol-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#face-name').textContent === 'Lin-Manuel Miranda'")
    assert page.inner_text("#enrol-status") == "Enrolled as Lin-Manuel Miranda."
    assert page.locator("#enrol-form").is_hidden()
    found = site.system.client().get("/v1/people", query_string={"q": "Lin-Manuel"}).get_json()["items"]
    assert [(p["display_name"], p["face_count"]) for p in found] == [("Lin-Manuel Miranda", 1)]
    screenshot(page, "enrolled.png")


def test_the_page_fits_a_phone_screen(page: Any, site: Site) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_page(page, site)
    start_live(page, "classroom")
    boxes = wait_for_boxes(page, 2)
    pause_live(page)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
    frame = page.locator("#stage img").bounding_box()
    assert frame["width"] <= 390
    for box in boxes:
        rect = box.bounding_box()
        assert frame["x"] <= rect["x"] and rect["x"] + rect["width"] <= frame["x"] + frame["width"] + 1
    screenshot(page, "phone.png")


def test_a_camera_that_is_down_shows_the_error_and_the_view_recovers(page: Any, site: Site) -> None:
    open_page(page, site)
    start_live(page, "broken")
    page.wait_for_selector("#live-error", state="visible")
    message = page.inner_text("#live-error")
    assert "Camera frame failed" in message and "camera_unreachable" in message
    assert page.inner_text("#live-state") == "error"
    screenshot(page, "camera-down.png")
    page.select_option("#camera-select", "classroom")  # switching camera restarts the live view
    wait_for_boxes(page, 2)
    page.wait_for_selector("#live-error", state="hidden")
    pause_live(page)


def test_an_uploaded_photo_gets_its_boxes(page: Any, site: Site) -> None:
    open_page(page, site)
    page.set_input_files("#photo-input", str(shared_dir() / PROBES / "kit_with_rose.jpg"))
    boxes = boxes_left_to_right(page, 2)
    assert page.inner_text("#live-state") == "photo · kit_with_rose.jpg"
    names = {identify(page, box) for box in boxes}
    assert names == {"kit_harington", "rose_leslie"}


def test_people_page_lists_searches_shows_faces_adds_and_removes(page: Any, site: Site) -> None:
    open_page(page, site)
    page.click("[data-view=people]")
    page.wait_for_selector("#people-table tbody tr[data-person-id]")
    names = set(page.locator("#people-table td.name").all_inner_texts())
    assert names >= set(site.people)
    page.fill("#people-search", "rose")
    page.wait_for_function("() => document.querySelectorAll('#people-table tbody tr').length === 1")
    assert page.locator("#people-table td.name").all_inner_texts() == ["rose_leslie"]
    page.fill("#people-search", "")
    obama = page.locator(f"#people-table tr[data-person-id='{site.people['obama']['id']}']")
    obama.get_by_role("button", name="Faces").click()
    page.wait_for_function(  # the enrolled photos are fetched with the key and shown
        "() => { const imgs = [...document.querySelectorAll('#person-faces img')];"
        " return imgs.length === 2 && imgs.every(img => img.complete && img.naturalWidth > 0); }"
    )
    assert page.inner_text("#person-detail-name") == "obama"
    screenshot(page, "people.png")

    page.fill("#person-name", "Ada Lovelace")
    page.fill("#person-external", "S-1815")
    page.click("#person-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#person-detail-name').textContent === 'Ada Lovelace'"
    )
    page.wait_for_selector("#person-faces-status >> text=No photos yet")
    # A group photo cannot be enrolled: the API's error is shown, nothing is stored.
    page.set_input_files("#person-photo", str(shared_dir() / PROBES / "two_people.jpg"))
    page.wait_for_selector("#people-error", state="visible")
    assert "multiple_faces" in page.inner_text("#people-error")
    ada = page.locator("#people-table tr", has_text="Ada Lovelace")
    assert ada.locator("td.num").inner_text() == "0"
    remove = ada.get_by_role("button", name="Remove")
    remove.click()
    page.get_by_role("button", name="Confirm remove").click()
    page.wait_for_function(
        "() => ![...document.querySelectorAll('#people-table td.name')]"
        ".some(td => td.textContent === 'Ada Lovelace')"
    )
    assert site.system.client().get("/v1/people", query_string={"q": "Ada"}).get_json()["total"] == 0


def test_a_wrong_key_or_a_jobs_key_shows_the_api_error(page: Any, site: Site) -> None:
    open_page(page, site, key="not-a-valid-key-0000000")
    page.wait_for_selector("#api-error", state="visible")
    assert page.inner_text("#api-error").startswith("unauthorized:")
    page.fill("#api-key", JOBS_KEY)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#api-error", state="hidden")
    assert page.inner_text("#key-state") == "key saved in this browser"
    page.click("[data-view=people]")
    page.fill("#person-name", "Mallory")
    page.click("#person-form button[type=submit]")
    page.wait_for_selector("#people-error", state="visible")
    assert page.inner_text("#people-error").startswith("forbidden:")


def test_the_key_is_remembered_and_the_page_needs_none_itself(page: Any, site: Site) -> None:
    response = page.goto(f"{site.url}/ui/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    open_page(page, site)
    page.wait_for_selector("#camera-select option[value='classroom']", state="attached")
    page.reload()
    page.wait_for_selector("#camera-select option[value='classroom']", state="attached")
    assert page.inner_text("#key-state") == "key saved in this browser"
    page.click("#key-forget")
    page.wait_for_selector("#api-error", state="visible")
    assert page.inner_text("#api-error").startswith("unauthorized:")
    assert page.inner_text("#key-state") == "no key"


def test_csv_export_quotes_fields_and_defuses_spreadsheet_formulas(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/ui/")
    text = page.evaluate(
        """async () => (await import('/static/attendance.js')).attendanceCsv([
            {status: 'present', name: '=HYPERLINK("http://x")', externalId: 'a,b', personId: 7,
             score: '0.950'},
            {status: 'absent', name: 'Zoë "Z" Ng', externalId: null, personId: 8, score: ''},
        ])"""
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["status", "name", "external_id", "person_id", "score"],
        ["present", '\'=HYPERLINK("http://x")', "a,b", "7", "0.950"],
        ["absent", 'Zoë "Z" Ng', "", "8", ""],
    ]


def test_a_first_visit_asks_for_a_key_without_an_error(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/")
    page.wait_for_selector("body[data-connection]", state="attached")
    assert page.locator("#api-error").is_hidden(), "no error before the user has done anything"
    assert page.get_attribute("#key-state", "data-state") == "missing"
    assert page.inner_text("#key-state") == "no key: paste an API key to start"


def test_a_wrong_key_is_shown_as_refused_and_not_saved(page: Any, site: Site) -> None:
    open_page(page, site, key="not-a-valid-key-0000000")
    page.wait_for_selector("body[data-connection=refused]", state="attached")
    assert page.inner_text("#key-state") == "key refused (unauthorized): not saved"
    red = page.evaluate("() => getComputedStyle(document.querySelector('#key-state')).color")
    assert red == "rgb(217, 45, 32)", red
    assert page.evaluate("() => localStorage.getItem('rollcall.apiKey')") is None
    page.reload()
    page.wait_for_selector("body[data-connection=none]", state="attached")
    assert page.locator("#api-error").is_hidden()


def take_attendance(page: Any) -> None:
    start_live(page, "classroom")
    wait_for_boxes(page, 2)
    pause_live(page)
    page.click("#attendance-button")
    page.wait_for_selector("#attendance-table tbody tr[data-status=absent]")


def test_the_attendance_table_fits_its_panel_on_a_1366_pixel_screen(page: Any, site: Site) -> None:
    # A real class has long names and student numbers; the table must wrap them, not push Score out.
    client = site.system.client()
    long_name = client.post(
        "/v1/people",
        json={
            "display_name": "maximiliana_alexandra_von_hohenzollern",  # a seed-style folder name
            "external_id": "S2026000000000000012345",
        },
    ).get_json()
    try:
        page.set_viewport_size({"width": 1366, "height": 768})
        open_page(page, site)
        take_attendance(page)
        assert_attendance_table_fits(page)
    finally:
        assert client.delete(f"/v1/people/{long_name['id']}").status_code in (200, 204)


def assert_attendance_table_fits(page: Any) -> None:
    # The panel's content box: where its text may go without touching the border or being cut.
    right = page.evaluate(
        "() => { const p = document.querySelector('#attendance-panel');"
        " return p.getBoundingClientRect().right - parseFloat(getComputedStyle(p).paddingRight)"
        " - parseFloat(getComputedStyle(p).borderRightWidth); }"
    )
    for cell in page.locator("#attendance-table th, #attendance-table td").all():
        rect = cell.bounding_box()
        assert rect["x"] + rect["width"] <= right + 0.5, f"{cell.inner_text()!r} sticks out of the panel"
    assert page.locator("#attendance-table th").last.inner_text().lower() == "score"
    table = page.locator("#attendance-table")
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth"), "the table is wider than it shows"
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    screenshot(page, "attendance-1366.png")


def test_no_view_scrolls_sideways_at_phone_width(page: Any, site: Site) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    open_page(page, site)
    width = "() => document.documentElement.scrollWidth"
    page.wait_for_selector("body[data-connection=ok]", state="attached")
    assert page.evaluate(width) <= 360, "the classroom view scrolls sideways"
    take_attendance(page)
    assert page.evaluate(width) <= 360, "the attendance panel scrolls sideways"
    page.click("[data-view=people]")
    page.wait_for_selector("#people-table tbody tr")
    assert page.evaluate(width) <= 360, "the people view scrolls sideways"
    page.locator("#people-table tbody tr").first.locator("button").first.click()
    page.wait_for_selector("#person-detail", state="visible")
    assert page.evaluate(width) <= 360, "a person's detail scrolls sideways"
    screenshot(page, "phone-people.png")
