"""A real Mosquitto broker of the tests' own, and a real subscriber to it.

``MosquittoBroker`` runs Debian's ``mosquitto`` (``scripts/ensure_mqtt_broker.sh`` installs it) with a
config of its own: one listener on a free loopback port, no anonymous clients, a password file made by
``mosquitto_passwd``, nothing kept on disk unless ``keep_sessions``. Started as root it stays the
invoking user (``user`` in the config) so it can read its files in the temporary folder.
``Subscriber`` is a paho client that keeps every message it gets.
"""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.processes import free_port, port_open
from tests.conftest import wait_until

ENSURE = "scripts/ensure_mqtt_broker.sh"


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(f"{name} is not installed: run {ENSURE}")


class MosquittoBroker:
    """One private broker; ``users`` may connect with their passwords, nobody else."""

    def __init__(
        self,
        folder: Path,
        users: dict[str, str],
        keep_sessions: bool = False,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """``tls``: (certificate chain, key) in PEM: the listener speaks TLS only (``mqtts://``)."""
        self.folder = folder
        self.users = users
        self.port = free_port()
        self.log_path = folder / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        passwords = folder / "passwords"
        passwords.unlink(missing_ok=True)
        for user, password in users.items():
            create = ["-c"] if not passwords.exists() else []
            subprocess.run(
                [_binary("mosquitto_passwd"), *create, "-b", str(passwords), user, password],
                check=True,
                capture_output=True,
            )
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {passwords}\n"
            # keep_sessions: subscribers' sessions and their queued messages survive a restart (SIGTERM saves)
            f"persistence {'true' if keep_sessions else 'false'}\n"
            f"persistence_location {folder}/\n"
            f"log_dest file {self.log_path}\n"
            "log_type all\n" + (f"certfile {tls[0]}\nkeyfile {tls[1]}\n" if tls is not None else "")
        )
        self.scheme = "mqtts" if tls is not None else "mqtt"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        credentials = f"{user}:{password}@" if user is not None else ""
        return f"{self.scheme}://{credentials}127.0.0.1:{self.port}"

    def start(self) -> MosquittoBroker:
        self._process = subprocess.Popen(
            [_binary("mosquitto"), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Subscriber:
    """A real MQTT client subscribed to ``topic`` (wildcards allowed); ``messages`` in arrival order."""

    def __init__(
        self, broker: MosquittoBroker, user: str, password: str, topic: str, client_id: str | None = None
    ) -> None:
        """``client_id``: a persistent session (clean_session off) under that id; None: a clean one."""
        self._lock = threading.Lock()
        self._messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{free_port()}",
            clean_session=client_id is None,
        )
        self._client.username_pw_set(user, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)  # back at once after a broker restart
        self._client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._keep
        self._client.connect("127.0.0.1", broker.port)
        self._client.loop_start()
        wait_until(self._subscribed.is_set, 10, f"the subscription to {topic}")

    def _keep(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append((message.topic, message.payload, bool(message.retain)))

    def messages(self) -> list[tuple[str, bytes, bool]]:
        """(topic, payload, retained) of every message so far."""
        with self._lock:
            return list(self._messages)

    def json(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(payload) for got, payload, _ in self.messages() if got == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
