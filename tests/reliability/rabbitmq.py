"""RabbitMQ servers of the reliability suite's own, so faults can be tried on the broker without touching
the machine's RabbitMQ (127.0.0.1:5672 on the development machines stays as it is).

Each server is Debian's ``rabbitmq-server`` started by hand as a separate node: its own node name, AMQP
and distribution ports, database (``RABBITMQ_MNESIA_BASE``), logs and Erlang cookie (``HOME``), all in
a temporary folder. Nothing here needs the management plugin or ``rabbitmqctl``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, port_open, wait_until

# Debian installs the real start script here; /usr/sbin/rabbitmq-server is a wrapper that switches to
# the rabbitmq user, who could not write to the test's folders.
SERVER_SCRIPTS = (Path("/usr/lib/rabbitmq/bin/rabbitmq-server"),)
INSTALL_HINT = (
    "rabbitmq-server is not installed: run `make test` (scripts/ensure_rabbitmq.sh installs Debian's "
    "package), or `apt-get install -y rabbitmq-server`"
)
_numbers = itertools.count(1)


def server_script() -> Path:
    for path in SERVER_SCRIPTS:
        if path.is_file():
            return path
    found = shutil.which("rabbitmq-server")
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return Path(found)


@dataclass
class RabbitServer:
    """One RabbitMQ node on loopback; ``freeze``/``kill``/``start`` try broker faults on it."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.dist_port = free_port()
        self.node = f"rollcall-test-{os.getpid()}-{next(_numbers)}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        """Start (or restart on the same database: durable queues and persistent jobs survive)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "enabled_plugins").write_text("[].\n")
        env = {
            **os.environ,
            "HOME": str(self.directory),  # the Erlang cookie goes here, not into the user's home
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq"),  # none: the defaults
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.directory / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "rabbitmq-env.conf"),
        }
        log = (self.directory / "server.out").open("ab")
        self.process = subprocess.Popen(
            [str(server_script())], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        process = self.process

        def up() -> bool:
            assert process.poll() is None, f"rabbitmq-server exited: see {self.directory / 'server.out'}"
            return port_open(self.port)

        wait_until(up, 60, f"RabbitMQ on port {self.port}", interval=0.2)

    def _signal_all(self, sig: signal.Signals) -> None:
        """Signal the start script and the Erlang VM under it (they share a process group)."""
        assert self.process is not None
        os.killpg(self.process.pid, sig)

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts TCP connections, nothing answers on them."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut: no clean shutdown, no goodbye to the clients."""
        assert self.process is not None
        self._signal_all(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        wait_until(lambda: not port_open(self.port), 30, f"RabbitMQ's port {self.port} to close")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.thaw()  # in case a failed test left it frozen
            self._signal_all(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._signal_all(signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 30
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
