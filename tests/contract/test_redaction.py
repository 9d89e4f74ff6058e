"""What of a job's arguments Flower, events and logs may show."""

from __future__ import annotations

import pytest

from contract.redaction import redacted_repr


@pytest.mark.parametrize("scheme", ["http", "https", "rtsp", "rtsps", "RTSP"])
def test_camera_urls_of_every_scheme_are_shown_without_credentials_path_or_query(scheme: str) -> None:
    shown = redacted_repr(
        {"source": {"url": f"{scheme}://admin:p%40ss@cam.lan:8554/Streaming/101?token=t0k"}}
    )
    port = "8554"
    assert f"{scheme.lower()}://cam.lan:{port}/…" in shown
    for secret in ("admin", "p%40ss", "Streaming", "t0k"):
        assert secret not in shown
