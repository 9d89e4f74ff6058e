"""Many clients at once, over real HTTP, for a bounded time: every accepted job reaches a final state.

Closed-loop clients (threads, loopback only) each submit a detect job and poll it until it ends,
then submit the next, for ``ROLLCALL_RELIABILITY_LOAD_S`` seconds (default 20). One job in ten
names a camera path that answers 404, so failures are counted by reason too.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.conftest import ADMIN_KEY
from tests.reliability.conftest import FINAL_STATES, ApiProcess, Deployment, HoldingCamera, percentile

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
DURATION_S = float(os.environ.get("ROLLCALL_RELIABILITY_LOAD_S", "20"))
CLIENTS = 8
POLL_S = 0.1
DRAIN_S = 60  # after the load stops, how long the last jobs may take to end


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: list[str] = field(default_factory=list)
    rejected: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    expected_failures: int = 0
    latencies_s: list[float] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)


def client(api: ApiProcess, camera: HoldingCamera, index: int, until: float, tally: Tally) -> None:
    """One client thread; an exception (timeout, refused connection) is recorded for the test to report."""
    try:
        client_loop(api, camera, index, until, tally)
    except Exception as exc:  # noqa: BLE001 - surfaced by the test's assertion on client_errors
        with tally.lock:
            tally.client_errors.append(repr(exc))


def client_loop(api: ApiProcess, camera: HoldingCamera, index: int, until: float, tally: Tally) -> None:
    session = requests.Session()
    session.headers["X-API-Key"] = ADMIN_KEY
    sent = 0
    while time.monotonic() < until:
        sent += 1
        failing = (index + sent) % 10 == 0
        url = camera.url("no/such/frame.jpg") if failing else camera.url()
        started = time.monotonic()
        response = session.post(f"{api.url}/v1/jobs/detect", json={"url": url}, timeout=30)
        if response.status_code != 202:
            with tally.lock:
                tally.rejected[response.status_code] += 1
            continue
        job_id = response.json()["job_id"]
        with tally.lock:
            tally.accepted.append(job_id)
            tally.expected_failures += failing
        deadline = until + DRAIN_S
        while True:
            body = session.get(f"{api.url}/v1/jobs/{job_id}", timeout=30).json()
            if body["state"] in FINAL_STATES:
                outcome = body["state"] if body["state"] != "failed" else f"failed:{body['error']['code']}"
                with tally.lock:
                    tally.outcomes[outcome] += 1
                    tally.latencies_s.append(time.monotonic() - started)
                break
            if time.monotonic() > deadline:
                with tally.lock:
                    tally.unfinished.append(job_id)
                break
            time.sleep(POLL_S)


def test_every_job_accepted_under_load_reaches_a_final_state(
    shared: Deployment, shared_api: ApiProcess, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    tally = Tally()
    started = time.monotonic()
    until = started + DURATION_S
    threads = [
        threading.Thread(target=client, args=(shared_api, holding_camera, i, until, tally), daemon=True)
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_S + DRAIN_S + 30)
    elapsed = time.monotonic() - started

    assert not any(thread.is_alive() for thread in threads), "a client never returned"
    assert not tally.client_errors, tally.client_errors[:3]
    accepted = len(tally.accepted)
    finished = sum(tally.outcomes.values())
    lost = accepted - finished
    assert accepted > 0
    assert not tally.rejected, f"the API refused jobs under load: {dict(tally.rejected)}"
    assert lost == 0 and not tally.unfinished, f"{lost} accepted jobs never ended: {tally.unfinished[:5]}"
    assert tally.outcomes["failed:camera_protocol_error"] == tally.expected_failures, dict(tally.outcomes)
    assert tally.outcomes["succeeded"] == accepted - tally.expected_failures
    assert shared_api.process.poll() is None and shared.workers[0].alive()
    report["load"] = {
        "clients": CLIENTS,
        "workers": len(shared.workers),
        "duration_s": DURATION_S,
        "wall_s": round(elapsed, 1),
        "accepted": accepted,
        "rejected": sum(tally.rejected.values()),
        "succeeded": tally.outcomes["succeeded"],
        "failed_by_reason": {
            k.split(":", 1)[1]: v for k, v in tally.outcomes.items() if k.startswith("failed:")
        },
        "lost": lost,
        "jobs_per_s": round(finished / elapsed, 2),
        "latency_s": {f"p{q}": round(percentile(tally.latencies_s, q), 3) for q in (50, 95, 99)},
    }
