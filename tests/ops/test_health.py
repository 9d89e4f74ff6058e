"""Probes for Docker and Kubernetes: a worker is alive (answers a ping) and ready (its models are loaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import System
from tests.ops.conftest import OpsWorker, health
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.integration


def test_running_worker_is_alive_and_ready(ops_system: System, ops_worker: OpsWorker) -> None:
    alive = health(ops_system.env, "--node", ops_worker.node)
    assert alive.returncode == 0, alive.stderr
    assert '"ok": "pong"' in alive.stdout

    ready = health(ops_system.env, "--node", ops_worker.node, "--ready")
    assert ready.returncode == 0, ready.stderr
    answer = json.loads(ready.stdout.split(": ", 1)[1])
    assert answer["models_loaded"] is True
    assert answer["processes"] == answer["processes_loaded"] == 1
    assert answer["embedder"] == "dlib_resnet_v1"
    assert answer["device"] == "cpu"
    assert answer["load_seconds"] > 0


def test_node_name_may_use_this_hosts_name(ops_system: System, ops_worker: OpsWorker) -> None:
    # Docker's exec-form HEALTHCHECK has no shell to expand $HOSTNAME; %h is expanded by the check.
    ready = health(ops_system.env, "--node", f"{ops_worker.name}@%h", "--ready")
    assert ready.returncode == 0, ready.stderr


def test_celery_ping_answers_for_the_worker(ops_system: System, ops_worker: OpsWorker) -> None:
    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "inspect", "ping", "-d", ops_worker.node, "-t", "10"],
        cwd=REPO_ROOT, env={**os.environ, **ops_system.env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "pong" in ping.stdout


@pytest.mark.parametrize("mode", [[], ["--ready"]], ids=["alive", "ready"])
def test_unknown_node_is_neither_alive_nor_ready(
    ops_system: System, ops_worker: OpsWorker, mode: list[str]
) -> None:
    answer = health(ops_system.env, "--node", "no-such-worker@nowhere", "--timeout", "1", *mode)
    assert answer.returncode == 1
    assert "no reply within 1 s" in answer.stderr
    assert answer.stdout == ""


def test_unreachable_broker_fails_the_probe_quickly() -> None:
    closed = {"ROLLCALL_BROKER_URL": "redis://127.0.0.1:1/0", "ROLLCALL_BROKER_TIMEOUT_S": "1"}
    answer = health(closed, "--node", "rollcall-gpu@%h", "--timeout", "2", timeout=20)
    assert answer.returncode == 1
    assert "broker is unreachable" in answer.stderr
