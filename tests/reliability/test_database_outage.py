"""PostgreSQL out of reach for a moment: jobs fail cleanly, nothing is corrupted, everything recovers.

A TCP proxy of the test's own sits between the worker and the real PostgreSQL server. Cutting
it drops the worker's pooled connections and refuses new ones; the API reaches the database
directly, so enrolments are still accepted and reach the worker.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import make_url

from tests.conftest import WorkerProcess, migrated_app, wait_for_job
from tests.postgres import temporary_database
from tests.reliability.conftest import Deployment, HoldingCamera, settings_of, submit
from tests.reliability.tcpproxy import TcpProxy
from tests.shared_data import shared_dir

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
PROBE = "datasets/facebank_probe/obama1.jpg"


def photo_b64(name: str) -> str:
    return base64.b64encode((shared_dir() / "datasets/facebank/obama" / name).read_bytes()).decode()


@pytest.fixture(scope="module")
def cut_off(deploy: Any) -> Iterator[tuple[Deployment, Any, TcpProxy, WorkerProcess]]:
    """(deployment whose worker and API go through the proxy, an API on the direct link, proxy, worker)."""
    with temporary_database() as direct_url:
        direct = make_url(direct_url)
        assert direct.host is not None and direct.port is not None
        proxy = TcpProxy((direct.host, direct.port)).start()
        proxied_url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        deployment: Deployment = deploy("database", ROLLCALL_DATABASE_URL=proxied_url)
        direct_app = migrated_app(settings_of({**deployment.env, "ROLLCALL_DATABASE_URL": direct_url}))
        worker = deployment.start_worker("w1")
        yield deployment, direct_app, proxy, worker
        deployment.stop()
        proxy.stop()
        direct_app.extensions["rollcall.facebank"].close()
        deployment.app.extensions["rollcall.facebank"].close()


def counts(client: Any) -> dict[str, Any]:
    stats = client.get("/v1/facebank/stats").get_json()
    return {
        "revision": stats["revision"],
        "people": stats["people"],
        "faces": stats["faces"],
        "embeddings": sum(model["embeddings"] for model in stats["models"]),
    }


def present(client: Any, url: str) -> dict[str, Any]:
    return wait_for_job(client, submit(client, "attendance", {"url": url}), timeout=60)


def test_a_database_outage_fails_jobs_cleanly_and_recovers(
    cut_off: tuple[Deployment, Any, TcpProxy, WorkerProcess],
    holding_camera: HoldingCamera,
    report: dict[str, Any],
) -> None:
    deployment, direct_app, proxy, worker = cut_off
    api = direct_app.test_client()
    api.environ_base["HTTP_X_API_KEY"] = deployment.client().environ_base["HTTP_X_API_KEY"]
    person = api.post("/v1/people", json={"display_name": "obama", "external_id": "obama"}).get_json()
    enrolled = api.post(f"/v1/people/{person['id']}/faces", json={"image_b64": photo_b64("obama.jpg")})
    assert enrolled.status_code == 201, enrolled.get_json()
    probe = holding_camera.url(PROBE)
    before = present(api, probe)
    assert [entry["person"]["display_name"] for entry in before["result"]["present"]] == ["obama"]
    baseline = counts(api)

    proxy.cut()
    attendance = present(api, probe)
    refused = api.post(f"/v1/people/{person['id']}/faces", json={"image_b64": photo_b64("obama2.jpg")})
    started = time.monotonic()
    through_proxy = deployment.client().get("/v1/people")
    api_answered_in = time.monotonic() - started
    during = counts(api)
    proxy.restore()

    assert attendance["state"] == "failed"
    assert attendance["error"]["code"] == "database_unavailable"
    assert refused.status_code == 503, refused.get_json()
    assert refused.get_json()["error"]["code"] == "database_unavailable"
    assert through_proxy.status_code == 503
    assert through_proxy.get_json()["error"]["code"] == "database_unavailable"
    assert api_answered_in < 6, "the API's answer is bounded by the connect timeout"
    assert during == baseline, "a failed job wrote nothing"
    assert worker.alive()

    after = present(api, probe)
    assert after["state"] == "succeeded", after
    assert [entry["person"]["display_name"] for entry in after["result"]["present"]] == ["obama"]
    again = api.post(f"/v1/people/{person['id']}/faces", json={"image_b64": photo_b64("obama2.jpg")})
    assert again.status_code == 201, again.get_json()
    final = counts(api)
    assert final == {**baseline, "revision": baseline["revision"] + 1, "faces": 2, "embeddings": 2}
    report["database_cut"] = {
        "database": "postgresql via a TCP proxy",
        "jobs_during_cut": {
            "attendance": attendance["error"]["code"],
            "enrol": refused.get_json()["error"]["code"],
        },
        "api_503_s": round(api_answered_in, 2),
        "rows_changed_by_failed_jobs": 0,
        "recovered": True,
    }
