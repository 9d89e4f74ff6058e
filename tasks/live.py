"""Stream readers are workers: one that consumes ``ROLLCALL_LIVE_QUEUE`` runs a ``live.reader.Reader``.

    celery -A tasks worker --pool solo -Q rollcall.live --hostname rollcall-reader@%h

A bootstep of the worker starts the reader with the worker and stops it (streams closed, leases
released) with a warm shutdown. Being a worker, a reader shows in Flower and answers Celery's remote
control: ``celery -A tasks inspect stats`` carries its cameras under ``live``, and
``celery -A tasks inspect rollcall_live`` answers them alone. It serves ``/metrics`` like any worker
(``ROLLCALL_WORKER_METRICS_PORT``, ``live.metrics``). Nothing is sent to its queue today: it only marks
the worker as a reader (and is where commands to readers would go).

With ``ROLLCALL_LIVE_PROCESSOR`` set, the reader loads the detector and embedder once at start, as a
model worker does (its ``tasks.runtime.Runtime``), and hands them to the factory with the facebank snapshots.
With ``ROLLCALL_MQTT_URL`` or ``ROLLCALL_LIVE_WEBHOOK_URL`` set, presence changes also go out there
(``live.outlets``; the webhook through this app's callback delivery).
"""

from __future__ import annotations

import functools
from typing import Any

from celery import bootsteps
from celery.worker.control import inspect_command

from facebank.cameras import CameraDirectory
from live import keys
from live.evidence import EvidenceSink, TrackEvidence
from live.factory import ProcessorFactory, ReaderContext, load_factory
from live.outlets import PresenceOutlets
from live.processing import FrameProcessor
from live.reader import Reader, ReaderConfig
from live.unknown_tracks import UnknownTracks, UnknownTrackSink
from settings import Settings, get_settings
from sources.endpoint import CameraEndpoint
from tasks import app, runtime
from tasks.callbacks import schedule_callback


def consumes_live_queue(worker: Any) -> bool:
    """Whether ``worker`` (a ``WorkController``) was started with the live queue among its ``-Q``."""
    consumed = set(worker.app.amqp.queues.consume_from or ())
    return get_settings().live_queue in consumed


class StreamReaderStep(bootsteps.StartStopStep):
    """Runs the worker's stream reader from its start to its shutdown."""

    label = "stream reader"
    requires = ("celery.worker.components:Pool",)

    def include_if(self, worker: Any) -> bool:
        return consumes_live_queue(worker)

    def create(self, worker: Any) -> Reader:
        settings = get_settings()
        factory = load_factory(settings.live_processor)
        outlets = PresenceOutlets.from_settings(
            settings, worker.hostname, functools.partial(schedule_callback, worker.app)
        )
        worker.live_outlets = outlets
        client = keys.connect(settings)
        evidence = TrackEvidence(client, settings.live_evidence_keep_s, settings.live_evidence_max_tracks)
        unknown = UnknownTracks(client, settings.live_evidence_keep_s, settings.live_unknown_max_tracks)
        reader = Reader(
            client,
            ReaderConfig.from_settings(settings, worker.hostname),
            resolve=functools.partial(_resolve, settings),
            processors=functools.partial(_new_processor, factory, settings) if factory is not None else None,
            # presence out (MQTT, webhook); attendance sessions over streaming cameras read the other two
            sinks=[*outlets.sinks, EvidenceSink(evidence), UnknownTrackSink(unknown)],
        )
        worker.live_reader = reader
        return reader

    def start(self, worker: Any) -> None:
        from tasks.worker import start_runtime

        start_runtime()  # models before the first frame, as a model worker loads them before its first job
        worker.live_outlets.start()
        super().start(worker)

    def stop(self, worker: Any) -> None:
        super().stop(worker)  # the reader first: its last frames still reach the outlets
        outlets: PresenceOutlets | None = getattr(worker, "live_outlets", None)
        if outlets is not None:
            outlets.stop()

    def info(self, worker: Any) -> dict[str, Any]:
        reader: Reader | None = getattr(worker, "live_reader", None)
        return {"live": reader.describe()} if reader is not None else {}


app.steps["worker"].add(StreamReaderStep)


@inspect_command()
def rollcall_live(state: Any) -> dict[str, Any]:
    """This worker's stream reader: the cameras it reads ({} when it is no reader)."""
    reader: Reader | None = getattr(state.consumer.controller, "live_reader", None)
    return reader.describe() if reader is not None else {}


def _resolve(settings: Settings, camera: str) -> CameraEndpoint:
    """The endpoint of a live camera, from the registry (password decrypted here) or ROLLCALL_UI_CAMERAS."""
    configured = {name: entry.url for name, entry in settings.ui_cameras.items()}
    return CameraDirectory(runtime.current().facebank.cameras, configured).resolve(camera).endpoint


def _new_processor(factory: ProcessorFactory, settings: Settings, camera: str) -> FrameProcessor:
    context = ReaderContext(settings, lambda: runtime.current().pipe, lambda: runtime.current().snapshot())
    return factory(camera, context)
