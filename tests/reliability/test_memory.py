"""Every job's memory is bounded: the tiling a caller may ask for, and a ceiling per worker child.

A prefork worker with one child runs the heaviest jobs the default limits allow; the child's resident
memory is read from /proc (VmRSS now, VmHWM the peak). A child that grew past
``ROLLCALL_WORKER_MAX_MEMORY_MIB`` is replaced after its job by a fresh one.
"""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import wait_for_job, wait_until
from tests.reliability.conftest import (
    Deployment,
    children_of,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    submit,
)
from tests.shared_data import shared_dir

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
WIDE_FRAME = "oracles/mtcnn_facenet_pytorch/images/obama_and_biden.jpg"  # 2000 × 1428
# Near the most tiling the default limit allows (cost 15.7 of 16: ×2 with the widest overlap, the finest
# grid); the 8 × 8 at ×4, overlap 0.49, 8 px faces (cost 392) is refused.
BUDGET_TILING = {"mode": "on", "rows": 8, "cols": 8, "scale": 2, "overlap": 0.49, "min_face_size": 20}


def only_child(deployment: Deployment) -> int:
    worker = deployment.workers[0]
    assert worker.process is not None
    children: list[int] = []

    def one() -> bool:
        children[:] = children_of(worker.process.pid)  # type: ignore[union-attr]
        return len(children) == 1

    wait_until(one, 60, "the worker's one pool process")
    return children[0]


def b64_png(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def test_the_tiling_a_caller_may_ask_for_is_bounded_at_submission(deploy: Any) -> None:
    deployment: Deployment = deploy("tile-budget")
    client = deployment.client()
    huge = {"mode": "on", "rows": 8, "cols": 8, "scale": 4, "overlap": 0.49, "min_face_size": 8}
    refused = client.post("/v1/jobs/detect", json={"url": "http://127.0.0.1/x.jpg", "small_faces": huge})
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["code"] == "invalid_input" and "ROLLCALL_SMALL_FACES_MAX_TILE_COST" in error["message"]
    assert "392.0" in error["message"], "the message says what the request cost"
    for kind in ("detect", "attendance"):
        assert (
            client.post(
                f"/v1/jobs/{kind}", json={"url": "http://127.0.0.1/x.jpg", "small_faces": huge}
            ).status_code
            == 400
        )
    accepted = client.post(
        "/v1/jobs/detect", json={"url": "http://127.0.0.1/x.jpg", "small_faces": BUDGET_TILING}
    )
    assert accepted.status_code == 202


def test_worst_case_memory_of_one_job_at_the_default_limits(deploy: Any, report: dict[str, Any]) -> None:
    """Measured, not assumed: the child's peak RSS over the heaviest jobs the defaults let through."""
    deployment: Deployment = deploy("memory-worst", ROLLCALL_WORKER_MAX_MEMORY_MIB="0")
    deployment.start_worker("w1", pool="prefork")
    child = only_child(deployment)
    client = deployment.client()
    figures: dict[str, Any] = {"child_after_load_mib": round(rss_mib(child), 1)}

    wide = cv2.imread(str(shared_dir() / WIDE_FRAME))
    black = np.zeros((6300, 6300, 3), np.uint8)  # 39.7 MP: under ROLLCALL_FRAME_MAX_PIXELS (40 MP)
    jobs = {
        "detect_small_frame": ("detect", {"image_b64": b64_png(wide[:480, :640])}),
        # Before the tiled frame, which leaves an OpenVINO child several hundred MiB larger than it found it.
        "attendance_auto_6300x6300_black": (
            "attendance",
            {"image_b64": b64_png(black), "small_faces": {"mode": "auto"}},
        ),
        "detect_tiled_at_budget_2000x1428": (
            "detect",
            {"image_b64": b64_png(wide), "small_faces": BUDGET_TILING},
        ),
    }
    for name, (kind, body) in jobs.items():
        before = rss_mib(child)
        reset_peak_rss(child)  # each job's own peak, not the highest since the child started
        final = wait_for_job(client, submit(client, kind, body), timeout=180)
        assert children_of(deployment.workers[0].process.pid) == [child], "no ceiling: the same child"  # type: ignore[union-attr]
        figures[name] = {
            "state": final["state"],
            "error": (final["error"] or {}).get("code"),
            "rss_before_mib": round(before, 1),
            "peak_rss_mib": round(peak_rss_mib(child), 1),
            "rss_after_mib": round(rss_mib(child), 1),
        }
    report["memory_per_job"] = figures
    print(figures)


CEILING_MIB = 1000  # above a child after a small job (about 830 MiB here), below one after a tiled frame


def test_a_worker_child_that_grew_past_the_memory_ceiling_is_replaced(
    deploy: Any, report: dict[str, Any]
) -> None:
    deployment: Deployment = deploy("memory-ceiling", ROLLCALL_WORKER_MAX_MEMORY_MIB=str(CEILING_MIB))
    worker = deployment.start_worker("w1", pool="prefork")
    assert worker.process is not None
    child = only_child(deployment)
    client = deployment.client()
    wide = cv2.imread(str(shared_dir() / WIDE_FRAME))

    small = wait_for_job(client, submit(client, "detect", {"image_b64": b64_png(wide[:480, :640])}))
    assert small["state"] == "succeeded"
    assert children_of(worker.process.pid) == [child], "a child under the ceiling is kept"
    kept_mib = rss_mib(child)

    grown = wait_for_job(
        client, submit(client, "detect", {"image_b64": b64_png(wide), "small_faces": BUDGET_TILING}), 180
    )
    assert grown["state"] == "succeeded", grown
    wait_until(
        lambda: children_of(worker.process.pid) not in ([], [child]),  # type: ignore[union-attr]
        60,
        "the grown child to be replaced",
    )
    fresh = only_child(deployment)
    after = wait_for_job(client, submit(client, "detect", {"image_b64": b64_png(wide[:480, :640])}))
    assert after["state"] == "succeeded", "the fresh child serves the next job"
    assert rss_mib(fresh) < CEILING_MIB
    report["memory_ceiling"] = {
        "ceiling_mib": CEILING_MIB,
        "child_after_small_job_mib": round(kept_mib, 1),
        "replaced_after_tiled_job": True,
        "fresh_child_mib": round(rss_mib(fresh), 1),
    }
