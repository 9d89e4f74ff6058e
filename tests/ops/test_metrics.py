"""Workers export Prometheus metrics: per-stage times, jobs by outcome, gallery size, model load time."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.conftest import System, wait_for_job
from tests.ops.conftest import (
    FRAME,
    OpsWorker,
    Workers,
    health,
    run_detect,
    sample,
    scrape,
    submit_detect,
    wait_for,
)
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration


def test_solo_worker_counts_every_job_by_stage_and_outcome(
    ops_system: System, ops_worker: OpsWorker, camera: str
) -> None:
    client = ops_system.client()
    before = scrape(ops_worker.metrics_url)
    upload = base64.b64encode((shared_dir() / FRAME).read_bytes()).decode()
    jobs = [
        run_detect(client, {"url": f"{camera}/{FRAME}"}),
        run_detect(client, {"url": f"{camera}/{FRAME}"}),
        run_detect(client, {"image_b64": upload}),
        run_detect(client, {"url": f"{camera}/no/such/frame.jpg"}),
    ]
    attendance = client.post("/v1/jobs/attendance", json={"url": f"{camera}/{FRAME}"})
    jobs.append(wait_for_job(client, attendance.get_json()["job_id"]))
    assert [job["state"] for job in jobs] == ["succeeded"] * 3 + ["failed", "succeeded"]
    assert jobs[3]["error"]["code"] == "camera_protocol_error"  # the camera answered 404
    after = scrape(ops_worker.metrics_url)

    def added(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert added("rollcall_jobs_total", job="detect", outcome="succeeded") == 3
    assert added("rollcall_jobs_total", job="detect", outcome="camera_protocol_error") == 1
    assert added("rollcall_jobs_total", job="attendance", outcome="succeeded") == 1
    # The failed job was timed up to the stage that failed (fetch), not beyond.
    assert added("rollcall_stage_seconds_count", stage="fetch", job="detect") == 4
    for stage in ("decode", "detect"):
        assert added("rollcall_stage_seconds_count", stage=stage, job="detect") == 3
    for stage in ("fetch", "decode", "detect", "embed", "match"):
        assert added("rollcall_stage_seconds_count", stage=stage, job="attendance") == 1
    assert added("rollcall_job_seconds_count", job="detect") == 4
    assert added("rollcall_stage_seconds_sum", stage="detect", job="detect") > 0
    # Histogram buckets are cumulative: +Inf holds every observation.
    assert added("rollcall_stage_seconds_bucket", stage="detect", job="detect", le="+Inf") == 3
    assert sample(after, "rollcall_model_load_seconds", embedder="dlib_resnet_v1", device="cpu") > 0
    assert ("rollcall_gallery_faces", frozenset({("model", "dlib_resnet_v1")})) in after
    assert sample(after, "process_resident_memory_bytes") > 100 * 2**20, "solo workers export process metrics"


def test_prefork_worker_is_ready_when_every_child_has_loaded_and_adds_up_their_metrics(
    lifecycle_system: System, workers: Workers, camera: str
) -> None:
    worker = workers.start(lifecycle_system, "prefork", pool="prefork", concurrency=2, metrics=True)
    # The first child's "models loaded" let the fixture return; the second may still be loading.
    not_ready: list[str] = []

    def probe() -> str | None:
        answer = health(lifecycle_system.env, "--node", worker.node, "--ready", "--timeout", "5")
        if answer.returncode != 0:
            not_ready.append(answer.stderr)
        return answer.stdout if answer.returncode == 0 else None

    ready = json.loads(wait_for(probe, 60, "both children to load their models").split(": ", 1)[1])
    assert ready["models_loaded"] is True
    assert ready["processes"] == ready["processes_loaded"] == 2
    assert all('"models_loaded": false' in reply for reply in not_ready), not_ready

    client = lifecycle_system.client()
    # Slow frames keep one child busy so the other takes jobs too.
    job_ids = [submit_detect(client, {"url": f"{camera}/slow/0.5/{FRAME}"}) for _ in range(6)]
    assert all(wait_for_job(client, job_id)["state"] == "succeeded" for job_id in job_ids)
    children = set(re.findall(r"INFO/(ForkPoolWorker-\d+)\] job \{", worker.log()))
    assert len(children) == 2, f"both children should have run jobs, saw {children}"

    metrics = scrape(worker.metrics_url)
    assert sample(metrics, "rollcall_jobs_total", job="detect", outcome="succeeded") == 6
    for stage in ("fetch", "decode", "detect"):
        assert sample(metrics, "rollcall_stage_seconds_count", stage=stage, job="detect") == 6
    assert sample(metrics, "rollcall_model_load_seconds", embedder="dlib_resnet_v1", device="cpu") > 0
