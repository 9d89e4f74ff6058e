"""Is a worker alive, and has it loaded its models? The answer Docker and Kubernetes probes ask for.

    python -m tasks.health --node 'rollcall-gpu@%h'           # alive: the worker answers a ping
    python -m tasks.health --node 'rollcall-gpu@%h' --ready   # ready: its models are loaded

Exit status 0 for yes, 1 for no (no reply in time, models not loaded, broker unreachable), with
one line on stdout (the reply) or stderr (why not). ``%h`` is this machine's host name, as in
``celery worker --hostname``.

Models load in the processes that run jobs (prefork children, or the main process of a solo or
threads worker), but remote-control commands are answered by the main process. So each process
that has loaded the models leaves a small JSON file in the worker's state directory, and the
``rollcall_ready`` command checks that every live pool process has one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from celery.utils.nodenames import host_format
from celery.worker.control import inspect_command
from kombu.exceptions import OperationalError

log = logging.getLogger("rollcall.health")
# Set by the worker's main process at start-up; prefork children inherit it.
STATE_DIR_ENV = "ROLLCALL_WORKER_STATE_DIR"


@dataclass(frozen=True)
class Readiness:
    """What ``rollcall_ready`` answers: whether every process that runs jobs has its models in memory."""

    models_loaded: bool
    processes: int
    processes_loaded: int
    embedder: str | None
    embedder_version: str | None
    device: str | None
    load_seconds: float | None  # the slowest process's load


def create_state_dir() -> Path:
    """A fresh directory for this worker (readiness files, prefork metrics), named in the environment."""
    path = Path(tempfile.mkdtemp(prefix="rollcall-worker-"))
    os.environ[STATE_DIR_ENV] = str(path)
    return path


def state_dir() -> Path | None:
    value = os.environ.get(STATE_DIR_ENV)
    return Path(value) if value else None


def mark_loaded(models: dict[str, object], load_seconds: float) -> None:
    """Record that this process has loaded ``models`` (``FacePipeline.describe()``)."""
    directory = state_dir()
    if directory is None:
        # Not started by ``celery worker`` (an embedded test worker): nobody asks for readiness.
        log.debug("no worker state directory: readiness not recorded")
        return
    ready = directory / "ready"
    ready.mkdir(exist_ok=True)
    record = {**models, "pid": os.getpid(), "load_seconds": round(load_seconds, 3)}
    partial = ready / f".{os.getpid()}.json.tmp"
    partial.write_text(json.dumps(record))
    partial.replace(ready / f"{os.getpid()}.json")  # atomic: the reader never sees half a file


def readiness(pids: Iterable[int]) -> Readiness:
    """Readiness of the pool processes ``pids`` from their files (a replaced child starts without one)."""
    pids = list(pids)
    directory = state_dir()
    records = []
    for pid in pids:
        path = directory / "ready" / f"{pid}.json" if directory is not None else None
        if path is not None and path.is_file():
            records.append(json.loads(path.read_text()))
    first = records[0] if records else {}
    return Readiness(
        models_loaded=bool(pids) and len(records) == len(pids),
        processes=len(pids),
        processes_loaded=len(records),
        embedder=first.get("embedder"),
        embedder_version=first.get("embedder_version"),
        device=first.get("device"),
        load_seconds=max((r["load_seconds"] for r in records), default=None),
    )


@inspect_command()
def rollcall_ready(state: Any) -> dict[str, Any]:
    """Whether every pool process has loaded its models (rollcall readiness)."""
    pids = state.consumer.pool.info.get("processes") or [os.getpid()]  # prefork lists children
    return asdict(readiness(pids))


# --- the command-line check ---
def _reply(app: Any, command: str, node: str, timeout: float) -> dict[str, Any] | None:
    replies = app.control.broadcast(command, destination=[node], reply=True, timeout=timeout, limit=1)
    for reply in replies or []:
        if node in reply:
            answer: dict[str, Any] = reply[node]
            return answer
    return None


def check(node: str, ready: bool, timeout: float) -> tuple[bool, str]:
    """Ask ``node`` for a ping (or readiness); return (healthy, one line saying why)."""
    from tasks import app

    try:
        answer = _reply(app, "rollcall_ready" if ready else "ping", node, timeout)
    except (OperationalError, OSError) as exc:
        return False, f"{node}: the broker is unreachable ({type(exc).__name__}: {exc})"
    if answer is None:
        return False, f"{node}: no reply within {timeout:g} s"
    if ready and not answer.get("models_loaded"):
        return False, f"{node}: not ready {json.dumps(answer)}"
    return True, f"{node}: {json.dumps(answer)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.health", description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", required=True, help="worker node name, e.g. rollcall-gpu@%%h")
    parser.add_argument("--ready", action="store_true", help="also require the models to be loaded")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the reply")
    args = parser.parse_args(argv)
    healthy, line = check(host_format(args.node), args.ready, args.timeout)
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
