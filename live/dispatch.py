"""Processing live frames: each camera's ``FrameProcessor`` run on its newest frame, one at a time.

The feeds hand frames on at the configured rate; one thread runs the processors, always taking the
camera whose waiting frame is oldest, so cameras take turns and the models run one call at a time
(a reader's cores are shared by its cameras, as Frigate's detector is). A camera keeps only its
newest frame waiting: when the processor falls behind, the older waiting frame is dropped (counted),
so the events stay current instead of lagging further and further behind the camera.

Each ``ProcessedFrame`` goes to every ``LiveSink`` of the reader, in order: ``EventPublisher`` puts the
event on the camera's events channel and each presence change on its presence channel (``live.keys``)
for the event stream to fan out; MQTT, webhooks and sessions are sinks beside it. One sink failing is
logged and counted and never keeps the frame from the others. A processor is made (by the factory)
when its camera's first frame comes, and closed here, on this thread, when the camera stops being
read: its tracks never see a frame from another reader's time, and the tracks still open then reach
every sink's ``closed``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import redis

from live import keys
from live.metrics import live_metrics
from live.processing import EndedTrack, FrameProcessor, LiveSink, ProcessedFrame

log = logging.getLogger("rollcall.live")

NewProcessor = Callable[[str], FrameProcessor]  # camera name → a new processor for it (a bound live.factory)


@dataclass(frozen=True)
class _Waiting:
    image: np.ndarray
    ts: float
    frame_no: int


class EventPublisher:
    """Publishes a processed frame's event and presence changes on the camera's channels (a ``LiveSink``)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        with self._client.pipeline(transaction=False) as pipe:
            pipe.publish(keys.events_channel(camera), json.dumps(processed.event))
            for change in processed.presence:
                pipe.publish(keys.presence_channel(camera), json.dumps(asdict(change)))
            pipe.execute()

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        """Nothing to publish: the event stream's clients see the camera's events stop."""


class Dispatcher:
    """Runs the processors of a reader's cameras on one thread, newest frame per camera."""

    def __init__(self, factory: NewProcessor, sinks: Sequence[LiveSink]) -> None:
        self._factory = factory
        self._sinks = list(sinks)
        self._ready = threading.Condition()
        self._waiting: dict[str, _Waiting] = {}
        self._closing: dict[str, threading.Event] = {}
        self._processors: dict[str, FrameProcessor] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="live-dispatch", daemon=True)

    def start(self) -> Dispatcher:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every processor and end the thread (after the frame being processed, if any)."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout_s)

    def offer(self, camera: str, image: np.ndarray, ts: float, frame_no: int) -> None:
        """``camera``'s newest frame (a ``live.feed.FrameSink``); replaces one still waiting."""
        with self._ready:
            if camera in self._waiting:
                live_metrics().frames.labels(camera=camera, outcome="dropped").inc()
            self._waiting[camera] = _Waiting(image, ts, frame_no)
            self._ready.notify()

    def close_camera(self, camera: str) -> threading.Event:
        """``camera`` stopped being read here: its waiting frame is dropped and its processor closed; the
        answer is set once its ended tracks have reached every sink (the reader releases the camera's lease
        after that, so whoever sees the lease gone finds the tracks written)."""
        with self._ready:
            self._waiting.pop(camera, None)
            done = self._closing.setdefault(camera, threading.Event())
            self._ready.notify()
        return done

    def _run(self) -> None:
        while True:
            with self._ready:
                while not (self._waiting or self._closing or self._stopping):
                    self._ready.wait()
                closing, self._closing = self._closing, {}
                if self._stopping:
                    closing |= {name: threading.Event() for name in self._processors if name not in closing}
                    self._waiting.clear()
                item = None
                if self._waiting:
                    camera = min(self._waiting, key=lambda name: self._waiting[name].ts)
                    item = (camera, self._waiting.pop(camera))
            for name, done in closing.items():
                try:
                    self._close(name)
                finally:
                    done.set()
            if self._stopping:
                return
            if item is not None:
                self._process(*item)

    def _process(self, camera: str, waiting: _Waiting) -> None:
        counts = live_metrics().frames
        try:
            processor = self._processors.get(camera)
            if processor is None:
                processor = self._processors[camera] = self._factory(camera)
            processed = processor.process(waiting.image, waiting.ts)
        except Exception:  # one camera's processor failing must not stop the others': logged, counted
            log.exception("live camera %s: processing frame %d failed", camera, waiting.frame_no)
            counts.labels(camera=camera, outcome="failed").inc()
            return
        delivered = self._deliver(camera, lambda sink: sink.publish(camera, processed))
        counts.labels(camera=camera, outcome="processed" if delivered else "failed").inc()
        live_metrics().event_latency.observe(time.time() - waiting.ts)

    def _close(self, camera: str) -> None:
        processor = self._processors.pop(camera, None)
        if processor is None:
            return
        try:
            ended = processor.close()
        except Exception:  # a processor's bug on closing: logged; the camera is closed here either way
            log.exception("live camera %s: closing its processor failed", camera)
            return
        self._deliver(camera, lambda sink: sink.closed(camera, ended))

    def _deliver(self, camera: str, call: Callable[[LiveSink], None]) -> bool:
        """``call`` on every sink; False when one failed (logged and counted; the others still ran)."""
        delivered = True
        for sink in self._sinks:
            try:
                call(sink)
            except redis.RedisError as exc:
                log.warning(
                    "live camera %s: %s did not take the frame (Redis: %s)", camera, _named(sink), exc
                )
                delivered = False
            except Exception:  # a sink's failure is its own: logged with its trace, the next sink still runs
                log.exception("live camera %s: %s failed", camera, _named(sink))
                delivered = False
            if not delivered:
                live_metrics().sink_failures.labels(sink=_named(sink)).inc()
        return delivered


def _named(sink: LiveSink) -> str:
    return type(sink).__name__
