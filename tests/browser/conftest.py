"""Fixtures for the browser suite: the real system served over HTTP, loopback cameras, Debian's Chromium.

The page needs a real URL, so the isolated system's Flask app is served by werkzeug on a free
loopback port in a thread. The page's live view follows a camera's live events, so the system has a
stream reader running the live processor (as ``make run`` starts it) beside its model worker; its
cameras are snapshot cameras on a loopback HTTP server and GStreamer's RTSP server looping a still
classroom scene. Playwright drives ``/usr/bin/chromium`` (``scripts/ensure_chromium.sh`` installs it);
it never downloads a browser of its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest
from werkzeug.serving import make_server

from benchmarks.camera_servers import GstRtspCamera
from benchmarks.live_scenes import Truth, still_group
from benchmarks.processes import start_reader
from tests.conftest import _STATE_DIR as STATE_DIR
from tests.conftest import ADMIN_KEY, MODULE_PROCESSES, System
from tests.integration.test_recognition import enrol_folder
from tests.shared_data import REPO_ROOT, shared_dir
from tests.sources.camera_server import closed_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite runs as root in CI
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
PROBES = "datasets/facebank_probe"


LIVE_PROCESSOR = {"ROLLCALL_LIVE_PROCESSOR": "live.processor:for_reader"}  # what make run gives its reader


@dataclass(frozen=True)
class StillScene:
    url: str  # rtsp://127.0.0.1:<port>/h264
    truth: list[Truth]  # where each face is (640x480), and who


@dataclass
class Site:
    """The running system as the browser sees it."""

    url: str
    system: System
    people: dict[str, dict[str, Any]]
    cameras: dict[str, str]


@pytest.fixture(scope="session")
def still_scene_camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StillScene]:
    """GStreamer's RTSP server looping the still classroom scene (Obama, Biden, a girl nobody enrolled)."""
    image, truth = still_group(1).frame(0)
    photo = tmp_path_factory.mktemp("still-scene") / "still.jpg"
    cv2.imwrite(str(photo), image)
    gst = GstRtspCamera(photo).start()
    yield StillScene(gst.url("/h264"), truth)
    gst.stop()


@pytest.fixture(scope="session")
def site(system_factory: Any, camera: str, still_scene_camera: StillScene) -> Iterator[Site]:
    """An isolated system with a worker and a stream reader running the live processor, the shared
    facebank enrolled through the API, served over HTTP."""
    cameras = {
        "classroom": f"{camera}/{PROBES}/two_people.jpg",
        "newcomer": f"{camera}/{PROBES}/lin-manuel-miranda.png",
        "broken": f"http://127.0.0.1:{closed_port()}/shot.jpg",
        "stream": still_scene_camera.url,
    }
    system = system_factory("browser", ROLLCALL_UI_CAMERAS=",".join(f"{k}={v}" for k, v in cameras.items()))
    system.worker(keep=True)
    reader = start_reader("browser-reader", {**os.environ, **system.env, **LIVE_PROCESSOR}, STATE_DIR)
    MODULE_PROCESSES.add(reader, keep=True)
    reader.wait_ready()
    client = system.client()
    people = {
        folder.name: enrol_folder(client, folder)
        for folder in sorted((shared_dir() / "datasets/facebank").iterdir())
    }
    server = make_server("127.0.0.1", 0, system.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{server.server_port}", system, people, cameras)
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test runs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser profile (empty localStorage) with a desktop-sized window."""
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    context.set_default_timeout(90_000)  # model jobs on a busy 2-core CPU
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"uncaught JavaScript errors on the page: {errors}"


def open_page(page: Any, site: Site, key: str | None = ADMIN_KEY) -> None:
    """Load the page and enter the API key in its form, as a user does once."""
    page.goto(f"{site.url}/")
    if key is not None:
        page.fill("#api-key", key)
        page.click("#key-form button[type=submit]")


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
