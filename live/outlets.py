"""The presence sinks a reader gets from the settings: MQTT (``ROLLCALL_MQTT_URL``) and a webhook
(``ROLLCALL_LIVE_WEBHOOK_URL``), each only when configured.

Built and checked when the reader starts (a webhook URL the allowlist refuses stops it there, with the
error's code), started before the first frame and stopped after the last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from live.mqtt import MqttSink
from live.mqtturl import MqttTarget
from live.processing import LiveSink
from live.webhook import Schedule, WebhookSink, check_webhook_url
from settings import Settings


@dataclass
class PresenceOutlets:
    """The configured presence sinks; ``sinks`` go to the ``Reader``."""

    sinks: list[LiveSink] = field(default_factory=list)
    mqtt: MqttSink | None = None

    @classmethod
    def from_settings(cls, settings: Settings, reader_id: str, schedule: Schedule) -> PresenceOutlets:
        """``schedule``: queues one signed callback (``tasks.callbacks.schedule_callback`` on the app)."""
        outlets = cls()
        url = settings.mqtt_url.get_secret_value()
        if url:
            outlets.mqtt = MqttSink(
                MqttTarget.parse(url),
                reader_id,
                settings.mqtt_topic_prefix,
                settings.mqtt_queue_max,
                settings.mqtt_ca_file or None,
            )
            outlets.sinks.append(outlets.mqtt)
        if settings.live_webhook_url:
            check_webhook_url(settings.live_webhook_url, settings)
            outlets.sinks.append(WebhookSink(settings.live_webhook_url, schedule))
        return outlets

    def start(self) -> None:
        if self.mqtt is not None:
            self.mqtt.start()

    def stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
