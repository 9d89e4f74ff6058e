"""The live tests' shared parts: the real pipeline, a real facebank with the shared people enrolled, a
runner that feeds a scene's frames to a processor and keeps what came out, and a Redis of the live tests'
own, so heartbeats and watches of one test never count in another's (the camera servers and counting
proxies are ``tests/cameras/fixtures.py``'s)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import redis

from benchmarks.live_scenes import Scene, Truth, enrol_shared_people, match_truth, shared_people
from benchmarks.processes import free_port
from facebank.db import upgrade
from facebank.store import Facebank
from live.processing import PresenceChange
from live.processor import LiveParams, LiveProcessor, TrackRecord
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from recognition.snapshot import Snapshots
from settings import Settings, get_settings
from tests.conftest import RedisServer
from tests.live.mosquitto import MosquittoBroker

# The scenes' clock: frame i of a scene is decoded at START + i / fps (seconds since the epoch).
START = 1_767_225_600.0


@pytest.fixture(scope="session")
def pipe() -> FacePipeline:
    settings = get_settings()
    return load_pipeline(PipelineConfig(model_dir=settings.model_dir, device="cpu", engine=settings.engine))


@dataclass
class Enrolled:
    facebank: Facebank
    ids: dict[str, int]  # person id by the shared folder's name (obama, biden, ...)
    snapshots: Snapshots


def enrolled_facebank(pipe: FacePipeline, folder: Path, leave_out: tuple[str, ...] = ()) -> Enrolled:
    """A SQLite facebank in ``folder`` with the shared people enrolled (but ``leave_out``), read through
    the worker's own snapshots."""
    url = f"sqlite:///{folder / 'facebank.db'}"
    upgrade(url)
    facebank = Facebank.from_url(url)
    ids = enrol_shared_people(pipe, facebank, [name for name in shared_people() if name not in leave_out])
    snapshots = Snapshots(
        facebank,
        pipe.embedder.name,
        pipe.embedder.version,
        pipe.device,
        None,
        pipe.embedder.default_threshold,
    )
    return Enrolled(facebank, ids, snapshots)


@pytest.fixture(scope="session")
def enrolled(pipe: FacePipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enrolled]:
    people = enrolled_facebank(pipe, tmp_path_factory.mktemp("live-facebank"))
    yield people
    people.facebank.close()


def live_params(**changes: object) -> LiveParams:
    """The live defaults (``ROLLCALL_LIVE_*``), with ``changes`` to the settings."""
    return LiveParams.from_settings(Settings(**changes))


@dataclass
class Run:
    """What a processor answered for every frame of a scene."""

    scene: Scene
    events: list[dict[str, object]] = field(default_factory=list)
    truths: list[list[Truth]] = field(default_factory=list)
    presence: list[PresenceChange] = field(default_factory=list)
    ended: list[TrackRecord] = field(default_factory=list)

    def tracks_of(self, key: str) -> list[dict[str, object] | None]:
        """Per frame, the event's track that stands for the true face ``key`` (None: none does or it is
        not visible)."""
        found: list[dict[str, object] | None] = []
        for event, truth in zip(self.events, self.truths, strict=True):
            tracks = {t["track_id"]: t for t in event["tracks"]}  # type: ignore[index, union-attr]
            boxes = [(tid, np.asarray(t["box"])) for tid, t in tracks.items()]
            matched = match_truth({t.key: t.box for t in truth}, boxes)
            found.append(tracks[matched[key]] if key in matched else None)
        return found

    def seconds(self) -> float:
        return self.scene.length / self.scene.fps


def run_scene(
    scene: Scene,
    pipe: FacePipeline,
    people: Enrolled,
    params: LiveParams | None = None,
    between: Callable[[int], None] | None = None,
) -> Run:
    """Feed every frame of ``scene`` to a fresh processor (``between(i)`` runs before frame i); close it."""
    run = Run(scene)
    processor = LiveProcessor(
        "room12",
        pipe,
        people.snapshots.take,
        params or live_params(),
        scene.fps,
        on_track_end=run.ended.append,
    )
    for index, (offset, image, truth) in enumerate(scene.frames()):
        if between is not None:
            between(index)
        out = processor.process(image, START + offset)
        run.events.append(out.event)
        run.truths.append(truth)
        run.presence.extend(out.presence)
    processor.close()
    return run


@pytest.fixture(scope="session")
def live_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("live-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def live_redis(live_redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of an empty Redis."""
    client = redis.Redis.from_url(live_redis_server.url)
    client.flushall()
    yield client
    client.close()


# The users of the tests' MQTT broker: the readers publish as one, tests subscribe as the other.
MQTT_PUBLISHER = ("rollcall", "publisher-pw-0123")
MQTT_WATCHER = ("watcher", "watcher-pw-4567")


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """The session's Mosquitto (``tests/live/mosquitto.py``), with a password for each user."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"), dict([MQTT_PUBLISHER, MQTT_WATCHER]))
    broker.start()
    yield broker
    broker.stop()
