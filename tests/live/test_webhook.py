"""Presence changes to a webhook: an in-process stream reader (real Redis, the real MJPEG camera server)
queues each change on the real broker, a real worker delivers it signed to a real HTTP receiver.

What the receiver's owner would notice: the change arrives as the documented JSON, signed with the
callback secret exactly as job callbacks are (checked as ``tests/integration/test_callbacks.py`` does);
a webhook URL pointing at one of rollcall's own services is refused when the reader starts, and again at
delivery.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import errors
from live.demand import Demand
from live.outlets import PresenceOutlets
from live.reader import Reader
from settings import Settings
from sources.endpoint import CameraEndpoint
from tasks.callbacks import deliver, schedule_callback
from tests.conftest import System, WorkerProcess, wait_until
from tests.integration.callback_receiver import CallbackReceiver, callback_receiver
from tests.integration.test_callbacks import verify_signature
from tests.live.test_reader import FrameSizes, config
from tests.sources.camera_server import CameraServer
from webapi.jobqueue import celery_client

pytestmark = pytest.mark.integration
SECRET = "presence-webhook-secret-0123456789"


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with callback_receiver() as server:
        yield server


@pytest.fixture(scope="module")
def hooked(system_factory: Any) -> Iterator[tuple[System, WorkerProcess]]:
    """An isolated system with a callback secret and one real worker (it consumes the I/O queue)."""
    system = system_factory(
        "presence-webhook", ROLLCALL_CALLBACK_SECRET=SECRET, ROLLCALL_CALLBACK_RETRY_BACKOFF_S="1"
    )
    worker = system.worker()
    yield system, worker
    worker.stop()


def settings_of(system: System, **changes: str) -> Settings:
    env = {key.removeprefix("ROLLCALL_").lower(): value for key, value in system.env.items()}
    return Settings(**{**env, **changes})


def test_a_presence_change_is_posted_to_the_webhook_signed_like_a_callback(
    hooked: tuple[System, WorkerProcess],
    receiver: CallbackReceiver,
    live_redis: redis.Redis,
    mjpeg_camera: CameraServer,
) -> None:
    system, worker = hooked
    settings = settings_of(system, live_webhook_url=receiver.url("/presence"))
    outlets = PresenceOutlets.from_settings(
        settings, "reader-a", functools.partial(schedule_callback, celery_client(settings))
    )
    closed: list[str] = []
    reader = Reader(
        live_redis,
        config("reader-a"),
        lambda name: CameraEndpoint(mjpeg_camera.url("/mjpeg-live")),
        processors=lambda camera: FrameSizes(camera, closed),  # one "arrived" on its first frame
        sinks=outlets.sinks,
    ).start()
    try:
        Demand(live_redis).watch("room12", "page", 30)
        wait_until(lambda: receiver.received("/presence"), 60, "the webhook's delivery")
    finally:
        reader.stop()
    (delivery,) = receiver.received("/presence")
    assert verify_signature(SECRET.encode(), delivery.headers, delivery.body)
    assert not verify_signature(b"another secret", delivery.headers, delivery.body)
    sent = json.loads(delivery.body)
    assert set(sent) == {"camera", "person_id", "name", "event", "ts"}
    assert [sent[k] for k in ("camera", "person_id", "name", "event")] == ["room12", 7, "obama", "arrived"]
    wait_until(
        lambda: "callback for presence arrived on camera room12 delivered" in worker.log(),
        10,
        "the delivery to be logged by what it was for",
    )


def test_a_webhook_at_an_own_service_is_refused_at_start_and_at_delivery(
    hooked: tuple[System, WorkerProcess],
) -> None:
    system, _ = hooked
    broker_port = system.env["ROLLCALL_BROKER_URL"].rsplit(":", 1)[1].split("/")[0]
    own = f"http://127.0.0.1:{broker_port}/hook"  # Redis, the deployment's broker
    settings = settings_of(system, live_webhook_url=own)
    with pytest.raises(errors.CallbackNotAllowed) as at_start:
        PresenceOutlets.from_settings(settings, "reader-a", lambda url, payload: None)
    assert at_start.value.code == "callback_not_allowed"
    assert "ROLLCALL_LIVE_WEBHOOK_URL" in at_start.value.message and "own services" in at_start.value.message
    payload = {"camera": "room12", "person_id": 7, "name": "obama", "event": "arrived", "ts": 1.0}
    with pytest.raises(errors.CallbackNotAllowed):
        deliver(own, payload, settings, settings.camera_allow)


def test_a_webhook_without_a_secret_to_sign_with_stops_the_reader_at_start(
    hooked: tuple[System, WorkerProcess],
) -> None:
    settings = settings_of(hooked[0], live_webhook_url="http://127.0.0.1:9/hook", callback_secret="")
    with pytest.raises(errors.CallbacksNotConfigured, match="ROLLCALL_CALLBACK_SECRET"):
        PresenceOutlets.from_settings(settings, "reader-a", lambda url, payload: None)
