"""Presence changes out over MQTT: a ``LiveSink`` that Home Assistant and Node-RED subscribe to directly.

Each ``arrived``/``left`` of a known person (already debounced by the processor) is published as JSON
``{"camera", "person_id", "name", "event", "ts"}`` on ``<prefix>/cameras/<camera>/presence``:

- **QoS 1** (at least once): a lost ``arrived`` leaves an automation wrong for the whole lesson, while a
  duplicate is harmless (the same person arriving twice changes no state). QoS 2's extra round trip
  buys nothing here.
- **Not retained**: a retained ``arrived`` would be replayed to every new subscriber as if it were news,
  long after the person left or the reader died. Who is present now is state the reader does not own
  alone (the camera can move to another reader); the events are what it publishes.

The reader's own state is retained, on ``<prefix>/readers/<reader>/status``: ``online`` once connected,
``offline`` when it stops, and the same ``offline`` as its MQTT *will*, which the broker publishes when
the reader dies without saying so: a dashboard sees a dead reader within the keepalive.

paho's network loop runs in its own thread (``loop_start``) and reconnects with a doubling pause (1 s to
``RECONNECT_MAX_S``); ``publish`` only queues a message (sent at once when connected, on reconnection
otherwise), so a broker that is down never holds the reader's dispatch thread. The queue is bounded
(``ROLLCALL_MQTT_QUEUE_MAX``): past it a change is dropped, logged and counted, rather than the reader's
memory growing through a long outage. The password is never logged: the broker is named by
``MqttTarget.__str__``.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from dataclasses import asdict

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from live.metrics import live_metrics
from live.mqtturl import MqttTarget
from live.processing import EndedTrack, ProcessedFrame

log = logging.getLogger("rollcall.live.mqtt")

KEEPALIVE_S = 30  # the broker publishes the will after 1.5 × this without a packet from a dead reader
RECONNECT_MAX_S = 30
STOP_WAIT_S = 2.0  # how long stop() waits for the broker to take the "offline" status
# MQTT 3.1.1 CONNACK codes 4 and 5, as paho names them: the broker refused the user or the password.
_AUTH_REFUSED = ("Bad user name or password", "Not authorized")
_AUTH = "mqtt_not_authorized"
_NOT_IN_A_TOPIC_LEVEL = re.compile(r"[/+#\s]")


def presence_topic(prefix: str, camera: str) -> str:
    return f"{prefix}/cameras/{camera}/presence"


def status_topic(prefix: str, reader_id: str) -> str:
    """The reader's retained ``online``/``offline``; its id made one topic level (no ``/``, ``+``, ``#``)."""
    return f"{prefix}/readers/{_NOT_IN_A_TOPIC_LEVEL.sub('_', reader_id)}/status"


class MqttSink:
    """Publishes a reader's presence changes to one broker (a ``LiveSink``); ``start`` it, ``stop`` it."""

    def __init__(
        self,
        target: MqttTarget,
        reader_id: str,
        prefix: str = "rollcall",
        queue_max: int = 1000,
        ca_file: str | None = None,
    ) -> None:
        self.target = target
        self.prefix = prefix
        self.status_topic = status_topic(prefix, reader_id)
        # One client id per reader: a reader that restarts under the same name replaces its old session.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"rollcall-{_NOT_IN_A_TOPIC_LEVEL.sub('_', reader_id)}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if target.username:
            self._client.username_pw_set(target.username, target.password)
        if target.tls:
            self._client.tls_set(ca_certs=ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        self._queue_max = queue_max
        self._client.max_queued_messages_set(queue_max)
        self._client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self._client.will_set(self.status_topic, "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_connect_fail = self._on_connect_fail
        self._refused: str | None = None  # the last refusal logged, so a retry loop logs it once

    def start(self) -> MqttSink:
        """Connect in the background; the reader starts at once whether or not the broker answers."""
        self._client.connect_async(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        log.info("presence changes go to MQTT broker %s under %s/", self.target, self.prefix)
        return self

    def stop(self) -> None:
        """Say ``offline`` (retained) if connected, then disconnect; queued changes not yet sent are lost."""
        if self._client.is_connected():
            info = self._client.publish(self.status_topic, "offline", qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(STOP_WAIT_S)
        self._client.disconnect()
        self._client.loop_stop()
        live_metrics().mqtt_connected.set(0)

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    # --- LiveSink ---
    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        for change in processed.presence:
            payload = json.dumps(asdict(change), separators=(",", ":"))
            info = self._client.publish(presence_topic(self.prefix, camera), payload, qos=1, retain=False)
            messages = live_metrics().mqtt_messages
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                messages.labels(outcome="dropped").inc()
                log.warning(
                    "MQTT %s: %s %s on %s dropped: ROLLCALL_MQTT_QUEUE_MAX (%d) messages already wait "
                    "for the broker",
                    self.target,
                    change.name,
                    change.event,
                    camera,
                    self._queue_max,
                )
            else:  # sent, or queued until the broker answers again (MQTT_ERR_NO_CONN)
                messages.labels(outcome="queued").inc()

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        """Nothing to publish: presence changes come from the frames, and a closed camera decides none."""

    # --- paho's network thread ---
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        metrics = live_metrics()
        if reason.is_failure:
            code = _AUTH if str(reason) in _AUTH_REFUSED else "mqtt_refused"
            metrics.mqtt_connect_failures.labels(code=code).inc()
            if self._refused != code:
                self._refused = code
                log.error(
                    "%s: MQTT broker %s refused the connection: %s%s; retrying with backoff",
                    code,
                    self.target,
                    reason,
                    " (check the user and password of ROLLCALL_MQTT_URL)" if code == _AUTH else "",
                )
            return
        self._refused = None
        metrics.mqtt_connected.set(1)
        log.info("connected to MQTT broker %s", self.target)
        client.publish(self.status_topic, "online", qos=1, retain=True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: object,
    ) -> None:
        live_metrics().mqtt_connected.set(0)
        if reason.is_failure and self._refused is None:
            live_metrics().mqtt_connect_failures.labels(code="mqtt_unreachable").inc()
            log.warning(
                "mqtt_unreachable: lost MQTT broker %s (%s); presence changes wait in the queue",
                self.target,
                reason,
            )

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        """No TCP (or TLS) connection to the broker: paho tries again after its backoff. paho does not say
        why; with TLS a certificate the CA bundle does not vouch for is one reason."""
        live_metrics().mqtt_connect_failures.labels(code="mqtt_unreachable").inc()
        if self._refused != "mqtt_unreachable":
            self._refused = "mqtt_unreachable"
            log.warning(
                "mqtt_unreachable: MQTT broker %s does not answer%s; presence changes wait in the queue",
                self.target,
                " or its TLS certificate is not trusted (ROLLCALL_MQTT_CA_FILE)" if self.target.tls else "",
            )

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode, properties: object
    ) -> None:
        live_metrics().mqtt_messages.labels(outcome="acknowledged").inc()
