"""A real stream reader process (``celery -A tasks worker -Q rollcall.live``) gets its presence sinks from
its settings: with ``ROLLCALL_MQTT_URL`` it says ``online`` (retained) on its status topic of the real
broker while it runs and ``offline`` when it stops; with a webhook URL at one of rollcall's own services
it refuses to start, naming the setting.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from benchmarks.processes import start_reader
from live.mqtt import status_topic
from tests.conftest import wait_until
from tests.live.conftest import MQTT_PUBLISHER, MQTT_WATCHER
from tests.live.mosquitto import MosquittoBroker, Subscriber

pytestmark = pytest.mark.integration
PREFIX = "rollcall-proc"


def test_a_reader_process_says_online_on_its_broker_while_it_runs_and_offline_once_stopped(
    redis_server: Any, mqtt_broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        **os.environ,
        "ROLLCALL_MQTT_URL": mqtt_broker.url(*MQTT_PUBLISHER),
        "ROLLCALL_MQTT_TOPIC_PREFIX": PREFIX,
    }
    reader = start_reader("presence-a", env, tmp_path_factory.mktemp("reader-outlets"))
    try:
        reader.wait_ready()
        topic = status_topic(PREFIX, reader.node)
        watcher = Subscriber(mqtt_broker, *MQTT_WATCHER, topic)
        wait_until(lambda: (topic, b"online", True) in watcher.messages(), 20, "the reader's retained online")
        reader.stop()
        wait_until(lambda: (topic, b"offline", False) in watcher.messages(), 10, "the reader's offline")
        watcher.close()
    finally:
        reader.stop()
    log = reader.log()
    assert f"MQTT broker mqtt://{MQTT_PUBLISHER[0]}@127.0.0.1:{mqtt_broker.port}" in log
    assert MQTT_PUBLISHER[1] not in log


def test_a_reader_that_dies_is_offline_on_its_broker_at_once(
    redis_server: Any, mqtt_broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """SIGKILL: the reader says nothing, its connection drops, and the broker publishes its will."""
    env = {
        **os.environ,
        "ROLLCALL_MQTT_URL": mqtt_broker.url(*MQTT_PUBLISHER),
        "ROLLCALL_MQTT_TOPIC_PREFIX": PREFIX,
    }
    reader = start_reader("presence-k", env, tmp_path_factory.mktemp("reader-killed"))
    try:
        reader.wait_ready()
        topic = status_topic(PREFIX, reader.node)
        watcher = Subscriber(mqtt_broker, *MQTT_WATCHER, topic)
        wait_until(lambda: (topic, b"online", True) in watcher.messages(), 20, "the reader's retained online")
        reader.stop(signal.SIGKILL)
        wait_until(lambda: (topic, b"offline", False) in watcher.messages(), 10, "the broker's will for it")
        watcher.close()
    finally:
        reader.stop()
    late = Subscriber(mqtt_broker, *MQTT_WATCHER, topic)
    wait_until(late.messages, 5, "the retained status")
    assert late.messages() == [(topic, b"offline", True)]
    late.close()


def test_a_reader_with_a_webhook_at_an_own_service_refuses_to_start(
    redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {
        **os.environ,
        "ROLLCALL_CALLBACK_SECRET": "reader-outlets-secret-0123456789",
        "ROLLCALL_LIVE_WEBHOOK_URL": f"http://127.0.0.1:{redis_server.port}/hook",  # the broker's Redis
    }
    reader = start_reader("presence-b", env, tmp_path_factory.mktemp("reader-refused"))
    try:
        wait_until(lambda: not reader.alive(), 60, "the reader to stop at start")
    finally:
        reader.stop()
    log = reader.log()
    assert "CallbackNotAllowed" in log and "ROLLCALL_LIVE_WEBHOOK_URL" in log and "own services" in log
    assert "stream reader presence-b" not in log
