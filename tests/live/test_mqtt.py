"""Presence changes over MQTT: in-process stream readers on a real Redis, reading real MJPEG streams,
publishing to a real Mosquitto (``tests/live/mosquitto.py``) that a real subscriber watches.

What a Home Assistant user would notice: each enrolled person in the picture arrives exactly once and
leaves once out of it; a broker that is down holds up nothing (the page's events keep flowing) and the
changes made meanwhile arrive once it is back; a wrong password is named by its code in the log, never
shown; a bad ``ROLLCALL_MQTT_URL`` stops the process at start.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import trustme
from prometheus_client import REGISTRY
from pydantic import ValidationError

from benchmarks import live_scenes
from benchmarks.live_scenes import UNKNOWN
from live import keys
from live.demand import Demand
from live.metrics import live_metrics
from live.mqtt import MqttSink, presence_topic, status_topic
from live.mqtturl import MqttTarget
from live.processing import EndedTrack, PresenceChange, ProcessedFrame
from live.processor import LiveProcessor
from live.reader import Reader
from ml.pipeline import FacePipeline
from settings import Settings, describe_errors
from sources.endpoint import CameraEndpoint
from tests.conftest import wait_until
from tests.live.conftest import MQTT_PUBLISHER, MQTT_WATCHER, Enrolled, live_params
from tests.live.mosquitto import MosquittoBroker, Subscriber
from tests.live.scene_camera import SceneCamera
from tests.live.test_reader import FPS, config
from tests.sources.camera_server import closed_port

PREFIX = "rollcall-test"
PRESENCE_KEYS = {"camera", "person_id", "name", "event", "ts"}


@pytest.fixture()
def sinks() -> Iterator[list[MqttSink]]:
    """MQTT sinks a test started; each stopped after it."""
    started: list[MqttSink] = []
    yield started
    for sink in started:
        sink.stop()


def connected_sink(broker: MosquittoBroker, started: list[MqttSink], reader_id: str = "reader-a") -> MqttSink:
    sink = MqttSink(MqttTarget.parse(broker.url(*MQTT_PUBLISHER)), reader_id, PREFIX)
    started.append(sink.start())
    wait_until(lambda: sink.connected, 10, "the sink to connect to the broker")
    return sink


def test_each_enrolled_person_arrives_once_and_leaves_once_out_of_the_picture(
    live_redis: redis.Redis,
    mqtt_broker: MosquittoBroker,
    pipe: FacePipeline,
    enrolled: Enrolled,
    sinks: list[MqttSink],
) -> None:
    """The real processor (detector, tracker, embedder, facebank) on a real MJPEG stream of the still
    group: Obama and Biden enrolled, a girl nobody enrolled."""
    _, group, truth = next(iter(live_scenes.still_group(1, 10.0).frames()))
    expected = sorted(t.who for t in truth if t.who != UNKNOWN)
    assert len(expected) == 2
    camera = SceneCamera(group).start()
    sink = connected_sink(mqtt_broker, sinks)
    watcher = Subscriber(mqtt_broker, *MQTT_WATCHER, f"{PREFIX}/#")
    params = live_params(live_arrive_s=1.0, live_leave_s=2.0)
    reader = Reader(
        live_redis,
        config("reader-a"),
        lambda name: CameraEndpoint(camera.url),
        processors=lambda name: LiveProcessor(name, pipe, enrolled.snapshots.take, params, FPS),
        sinks=[sink],
    ).start()
    topic = presence_topic(PREFIX, "room12")
    try:
        Demand(live_redis).watch("room12", "page", 120)
        wait_until(lambda: len(watcher.json(topic)) >= 2, 90, "both enrolled people to arrive")
        time.sleep(3.0)  # 15 more frames of the same people: nobody arrives again
        arrived = watcher.json(topic)
        assert sorted(m["name"] for m in arrived) == expected
        assert all(set(m) == PRESENCE_KEYS for m in arrived)
        assert all(m["event"] == "arrived" and m["camera"] == "room12" for m in arrived)
        assert sorted(m["person_id"] for m in arrived) == sorted(enrolled.ids[name] for name in expected)

        emptied = camera.show(np.full_like(group, 128))  # everyone walks out of the picture
        wait_until(lambda: len(watcher.json(topic)) >= 4, 30, "both to leave")
        time.sleep(1.0)
        left = watcher.json(topic)[2:]
        assert sorted(m["name"] for m in left) == expected
        assert all(m["event"] == "left" and m["ts"] > emptied for m in left)
        presence = [retained for got, _, retained in watcher.messages() if got == topic]
        assert presence == [False] * 4, "presence changes are events, never retained"
    finally:
        reader.stop()
        camera.stop()
    sink.stop()
    wait_until(
        lambda: (status_topic(PREFIX, "reader-a"), b"offline", False) in watcher.messages(),
        5,
        "the reader's offline status",
    )
    watcher.close()
    late = Subscriber(mqtt_broker, *MQTT_WATCHER, status_topic(PREFIX, "reader-a"))
    wait_until(late.messages, 5, "the retained status")
    assert late.messages() == [(status_topic(PREFIX, "reader-a"), b"offline", True)]
    late.close()


class Announcer:
    """A stand-in processor (the real one is tested above): every frame announces one more arrival."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.frames = 0

    def process(self, image: np.ndarray, ts: float) -> ProcessedFrame:
        self.frames += 1
        change = PresenceChange(self.camera, self.frames, f"person{self.frames}", "arrived", ts)
        return ProcessedFrame({"camera": self.camera, "ts": ts, "tracks": []}, [change])

    def close(self) -> list[EndedTrack]:
        return []


def test_a_broker_that_is_down_holds_up_no_event_and_gets_the_changes_once_it_is_back(
    live_redis: redis.Redis, tmp_path: Path, sinks: list[MqttSink], mjpeg_camera: object
) -> None:
    broker = MosquittoBroker(tmp_path / "mqtt", dict([MQTT_PUBLISHER, MQTT_WATCHER]), keep_sessions=True)
    broker.start()
    watcher = Subscriber(broker, *MQTT_WATCHER, f"{PREFIX}/cameras/+/presence", client_id="outage-watcher")
    sink = connected_sink(broker, sinks)
    broker.stop()
    wait_until(lambda: not sink.connected, 10, "the sink to notice the broker is gone")
    channel = live_redis.pubsub()
    channel.subscribe(keys.events_channel("room12"), keys.presence_channel("room12"))
    reader = Reader(
        live_redis,
        config("reader-a"),
        lambda name: CameraEndpoint(mjpeg_camera.url("/mjpeg-live")),  # type: ignore[attr-defined]
        processors=Announcer,
        sinks=[sink],
    ).start()
    events: list[dict[str, object]] = []
    on_redis: list[int] = []

    def drain(timeout: float = 0.2) -> None:
        while (message := channel.get_message(timeout=timeout)) is not None:
            if message["type"] != "message":
                continue
            if message["channel"] == keys.presence_channel("room12").encode():
                on_redis.append(json.loads(message["data"])["person_id"])
            else:
                events.append(message)

    try:
        demand = Demand(live_redis)
        demand.watch("room12", "page", 60)
        deadline = time.monotonic() + 20
        while len(on_redis) < 10 and time.monotonic() < deadline:
            drain()
        assert len(events) >= 10 and len(on_redis) >= 10, "the page's events stopped with the broker"
        assert not sink.connected
        broker.start()  # back, on the same port, with the watcher's session
        wait_until(lambda: sink.connected, 40, "the sink to reconnect")
        time.sleep(1.0)  # a few changes published while connected, too
        demand.leave("room12", "page")
        reader.stop()
        drain(0.5)
        expected = set(on_redis)
        wait_until(
            lambda: {m["person_id"] for m in watcher.json(presence_topic(PREFIX, "room12"))} >= expected,
            30,
            f"all {len(expected)} changes on the broker",
        )
    finally:
        reader.stop()
        channel.close()
        watcher.close()
        sink.stop()
        broker.stop()


def test_a_wrong_password_is_logged_with_its_code_and_never_shown(
    mqtt_broker: MosquittoBroker, sinks: list[MqttSink], caplog: pytest.LogCaptureFixture
) -> None:
    user, _ = MQTT_PUBLISHER
    wrong = "not-the-password-987"
    live_metrics()  # the families exist before the first reading

    def failures() -> float:
        sample = REGISTRY.get_sample_value(
            "rollcall_live_mqtt_connect_failures_total", {"code": "mqtt_not_authorized"}
        )
        return sample or 0.0

    before = failures()
    with caplog.at_level(logging.INFO, logger="rollcall.live.mqtt"):
        sink = MqttSink(MqttTarget.parse(mqtt_broker.url(user, wrong)), "reader-b", PREFIX)
        sinks.append(sink.start())
        sink.publish("room12", Announcer("room12").process(np.zeros((4, 4, 3), np.uint8), time.time()))
        wait_until(lambda: "mqtt_not_authorized" in caplog.text, 10, "the refusal to be logged")
    assert not sink.connected
    assert failures() > before
    refusal = [r for r in caplog.records if "mqtt_not_authorized" in r.getMessage()]
    assert refusal[0].levelno == logging.ERROR
    assert f"mqtt://{user}@127.0.0.1:{mqtt_broker.port}" in refusal[0].getMessage()
    assert wrong not in caplog.text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker:1883", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "names no broker host"),
        ("mqtt://user:hunter2-secret@broker:99999", "not a number from 1 to 65535"),
        ("mqtt://user:hunter2-secret@broker/topic", "no path or query"),
    ],
)
def test_a_bad_mqtt_url_stops_the_settings_with_a_clear_message_and_no_password(
    url: str, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(mqtt_url=url)
    text = describe_errors(raised.value)  # what get_settings raises, as InvalidSettings, at start
    assert text.startswith("ROLLCALL_MQTT_URL: ") and message in text
    assert "hunter2" not in text and "hunter2" not in str(raised.value)


def test_a_good_mqtt_url_is_parsed_and_shown_without_its_password() -> None:
    settings = Settings(
        mqtt_url="mqtts://reader:p%40ss%2Fword@broker.school.lan", mqtt_topic_prefix="school/rc"
    )
    target = MqttTarget.parse(settings.mqtt_url.get_secret_value())
    assert (target.host, target.port, target.tls, target.username, target.password) == (
        "broker.school.lan",
        8883,
        True,
        "reader",
        "p@ss/word",
    )
    assert str(target) == "mqtts://reader@broker.school.lan:8883" and "p@ss" not in repr(target)
    assert "p%40ss" not in settings.model_dump_json()
    assert "broker.school.lan:8883" in str(settings.own_services())  # a camera URL may never reach it
    with pytest.raises(ValidationError, match="mqtt_topic_prefix"):
        Settings(mqtt_topic_prefix="rollcall/#")


def test_an_mqtts_broker_is_trusted_through_the_ca_file_and_not_without_it(
    tmp_path: Path, sinks: list[MqttSink], caplog: pytest.LogCaptureFixture
) -> None:
    """A broker whose certificate a private CA signed (as a school's is): ``ROLLCALL_MQTT_CA_FILE`` makes
    the reader trust it; the system's trust store alone does not."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca_file, chain, key = tmp_path / "ca.pem", tmp_path / "chain.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.cert_chain_pems[0].write_to_path(str(chain))
    leaf.private_key_pem.write_to_path(str(key))
    broker = MosquittoBroker(tmp_path / "mqtt", dict([MQTT_PUBLISHER]), tls=(chain, key)).start()
    try:
        url = broker.url(*MQTT_PUBLISHER)
        assert url.startswith("mqtts://")
        trusted = MqttSink(MqttTarget.parse(url), "reader-t", PREFIX, ca_file=str(ca_file))
        sinks.append(trusted.start())
        wait_until(lambda: trusted.connected, 10, "the sink with the CA file to connect")
        with caplog.at_level(logging.WARNING, logger="rollcall.live.mqtt"):
            untrusted = MqttSink(MqttTarget.parse(url), "reader-u", PREFIX)
            sinks.append(untrusted.start())
            wait_until(lambda: "mqtt_unreachable" in caplog.text, 10, "the untrusted connection to fail")
        assert not untrusted.connected
        assert "TLS certificate is not trusted" in caplog.text and MQTT_PUBLISHER[1] not in caplog.text
    finally:
        broker.stop()


def test_changes_for_a_broker_that_never_answers_are_bounded_by_the_queue_and_the_rest_counted(
    sinks: list[MqttSink], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens at the broker's address: the first ``queue_max`` changes wait, the next are dropped
    (logged, counted), and publishing returns at once every time."""
    target = MqttTarget.parse(f"mqtt://127.0.0.1:{closed_port()}")
    sink = MqttSink(target, "reader-q", PREFIX, queue_max=3)
    sinks.append(sink.start())
    live_metrics()

    def count(outcome: str) -> float:
        sample = REGISTRY.get_sample_value("rollcall_live_mqtt_messages_total", {"outcome": outcome})
        return sample or 0.0

    queued, dropped = count("queued"), count("dropped")
    announcer = Announcer("room12")
    with caplog.at_level(logging.WARNING, logger="rollcall.live.mqtt"):
        for _ in range(5):
            sink.publish("room12", announcer.process(np.zeros((4, 4, 3), np.uint8), time.time()))
    assert (count("queued") - queued, count("dropped") - dropped) == (3, 2)
    drops = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 2 and "person4 arrived on room12" in drops[0]
    assert "ROLLCALL_MQTT_QUEUE_MAX" in drops[0]
    assert not sink.connected
