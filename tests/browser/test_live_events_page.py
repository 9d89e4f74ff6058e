"""The page's live view on a real RTSP camera, in a real headless Chromium: GStreamer's RTSP server loops a
still classroom scene (Obama and Biden, enrolled, and a girl nobody enrolled), a real stream reader process
runs the live processor on it, and the page follows the camera's live events
(``GET /v1/cameras/stream/events`` read with ``fetch`` streaming) over its newest shared frame.

What a teacher would notice: boxes over the three faces with Obama's and Biden's names on them, each
box keeping its colour and its name as the events arrive, the frame shown coming from the reader's
shared frame, and a click on a box still identifying the face.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Site, open_page, screenshot
from tests.browser.test_classroom_page import identify, pause_live, start_live, wait_for_boxes, wait_for_names

pytestmark = [pytest.mark.browser, pytest.mark.integration]

LABELS = """() => [...document.querySelectorAll('#stage .face-box')].map(box => ({
    track: box.dataset.track, label: box.querySelector('.tag').textContent,
    color: box.style.getPropertyValue('--box-color')}))"""


def test_live_events_draw_named_boxes_that_stay_on_each_person(page: Any, site: Site) -> None:
    events: list[Any] = []
    frame_sources: list[str] = []

    def answered(response: Any) -> None:
        if response.url.endswith("/v1/cameras/stream/frame") and response.ok:
            frame_sources.append(response.headers.get("x-frame-source", ""))

    page.on("request", lambda request: events.append(request) if request.url.endswith("/events") else None)
    page.on("response", answered)
    open_page(page, site)
    start_live(page, "stream")
    wait_for_boxes(page, 3)
    wait_for_names(page, {"obama", "biden"})
    seen: list[list[dict[str, str]]] = []
    for _ in range(15):  # about 3 s of events (the reader processes 5 frames a second)
        seen.append(page.evaluate(LABELS))
        page.wait_for_timeout(200)
    screenshot(page, "live-events.png")
    by_track: dict[str, set[tuple[str, str]]] = {}
    for boxes in seen:
        for box in boxes:
            by_track.setdefault(box["track"], set()).add((box["label"], box["color"]))
    named = {label for pairs in by_track.values() for label, _ in pairs if not label.startswith("#")}
    assert named == {"obama", "biden"}
    assert len(by_track) == 3, f"a face changed track on a still scene: {by_track}"
    for track, pairs in by_track.items():
        assert len(pairs) == 1, f"track {track} changed its name or colour: {pairs}"
    assert len({color for pairs in by_track.values() for _, color in pairs}) == 3  # one colour per person
    assert frame_sources[-3:] == ["live"] * 3, frame_sources  # the reader's shared frames, once it reads
    assert len(events) == 1 and events[0].headers["x-api-key"]  # one stream, the key in its header

    pause_live(page)
    obama = page.locator("#stage .face-box", has_text="obama")
    assert identify(page, obama) == "obama"  # a click identifies the face on the frame shown, as before
