"""The page's Cameras tab in a real headless Chromium against the real system: an admin adds a camera
that asks for a password, tests it, watches it live and removes it; a ``jobs`` key only sees the cameras."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import Site, open_page, screenshot
from tests.browser.test_classroom_page import pause_live, start_live, wait_for_boxes
from tests.conftest import JOBS_KEY
from tests.sources.camera_server import CameraServer

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PASSWORD = "hunter2"  # the loopback camera's Basic password (user "admin")


@pytest.fixture(scope="module")
def door_camera() -> Iterator[CameraServer]:
    server = CameraServer(credentials=("admin", PASSWORD)).start()
    yield server
    server.stop()


def open_cameras(page: Any, site: Site, key: str | None = None) -> None:
    open_page(page, site, **({"key": key} if key else {}))
    page.wait_for_selector("body[data-connection=ok]", state="attached")
    page.click("[data-view=cameras]")
    page.wait_for_selector("#cameras-table tbody tr[data-camera=classroom]")


def row(page: Any, name: str) -> Any:
    return page.locator(f"#cameras-table tbody tr[data-camera='{name}']")


def test_an_admin_adds_tests_watches_and_removes_a_camera(
    page: Any, site: Site, door_camera: CameraServer
) -> None:
    open_cameras(page, site)
    source = row(page, "classroom").locator("td").nth(3)
    assert (source.inner_text(), source.get_attribute("title")) == (
        "setting",
        "ROLLCALL_UI_CAMERAS: change the setting to change it",
    )

    page.fill("#camera-name", "front-door")
    page.fill("#camera-url", door_camera.url("/basic/photo.jpg"))
    page.fill("#camera-username", "admin")
    page.fill("#camera-password", PASSWORD)
    page.fill("#camera-label", "Front door")
    page.click("#camera-form button[type=submit]")
    page.wait_for_selector("#cameras-table tbody tr[data-camera=front-door]")
    cells = row(page, "front-door").locator("td").all_inner_texts()
    assert cells[:4] == ["front-door", "Front door", "admin · password", "registry"]
    assert page.input_value("#camera-password") == "", "the form forgets the password once it is sent"
    assert PASSWORD not in page.content()

    row(page, "front-door").get_by_role("button", name="Test").click()
    page.wait_for_selector("#camera-test[data-state=ok]")
    assert page.inner_text("#camera-test-title") == "front-door: a frame arrived"
    assert page.inner_text("#camera-test-result dd[data-fact=authentication]") == "basic"
    assert page.inner_text("#camera-test-result dd[data-fact=reachable]") == "yes"
    screenshot(page, "camera-test.png")

    page.click("[data-view=classroom]")
    start_live(page, "front-door")  # the new camera is offered at once, and its frames need the password
    wait_for_boxes(page, 1)
    pause_live(page)

    page.click("[data-view=cameras]")
    remove = row(page, "front-door").get_by_role("button", name="Remove")
    remove.click()
    row(page, "front-door").get_by_role("button", name="Confirm remove").click()
    page.wait_for_selector("#cameras-table tbody tr[data-camera=front-door]", state="detached")
    page.wait_for_selector("#camera-select option[value='front-door']", state="detached")
    assert site.system.client().get("/v1/cameras/front-door").status_code == 404


def test_a_failing_camera_test_names_the_error(page: Any, site: Site) -> None:
    open_cameras(page, site)

    row(page, "broken").get_by_role("button", name="Test").click()

    page.wait_for_selector("#camera-test[data-state=failed]")
    assert page.inner_text("#camera-test-title") == "broken: camera_unreachable"
    assert page.inner_text("#camera-test-result dd[data-fact=reachable]") == "no"
    assert row(page, "broken").get_by_role("button", name="Remove").count() == 0, (
        "the setting's are read only"
    )


def test_a_jobs_key_sees_the_cameras_and_cannot_change_them(page: Any, site: Site) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    open_cameras(page, site, key=JOBS_KEY)

    assert page.locator("#camera-add").is_hidden()
    assert page.locator("#cameras-admin-hint").is_visible()
    assert page.locator("#cameras-table tbody button").count() == 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360, (
        "the cameras view scrolls sideways"
    )
    screenshot(page, "phone-cameras.png")
