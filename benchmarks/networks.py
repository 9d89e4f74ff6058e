"""The time rollcall spends inside its networks: the ceiling of every speedup the benchmarks report.

At equal work rollcall and the way it is compared with run the same networks (MTCNN's three, the
embedder) over the same pyramid and faces, so a speedup comes mostly from what rollcall does around
them: pyramid, crops, NMS, alignment, Python. ``other time / networks-only time`` is the speedup
rollcall would reach if all of that cost nothing. The benchmarks report it beside each headline ratio
(``<key>_ceiling``), so a goal above the ceiling reads as out of reach for these networks on this
machine and engine rather than as work left undone.

Measured by wrapping what runs each network: MTCNN's sessions (``MTCNN.sessions``, swapped here
because only a benchmark needs it) and the embedder's ``run_network``. A session's time includes its
input and output copies for an engine other than torch, which are part of running the network there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ml.pipeline import FacePipeline


class _Timed:
    """A session whose ``run`` is the clock's timed wrapper of the session it stands in for."""

    def __init__(self, run: Callable[..., Any]) -> None:
        self.run = run


class NetworkClock:
    """Milliseconds spent inside ``pipe``'s networks while ``measuring`` is open, reset by it: ``detector_ms``
    (MTCNN's three), ``embedder_ms``, and ``ms``, both together."""

    def __init__(self, pipe: FacePipeline) -> None:
        self._pipe = pipe
        self.detector_ms = 0.0
        self.embedder_ms = 0.0

    @property
    def ms(self) -> float:
        return self.detector_ms + self.embedder_ms

    def _timed(self, run: Callable[..., Any], counter: str) -> Callable[..., Any]:
        def timed(*inputs: Any) -> Any:
            started = time.perf_counter()
            try:
                return run(*inputs)
            finally:
                setattr(self, counter, getattr(self, counter) + (time.perf_counter() - started) * 1000)

        return timed

    @contextmanager
    def measuring(self) -> Iterator[NetworkClock]:
        """Count the networks' time from zero until the block ends; the pipeline is as before after it."""
        detector, embedder = self._pipe.detector, self._pipe.embedder
        sessions = detector.sessions
        self.detector_ms = self.embedder_ms = 0.0
        detector.sessions = {name: _Timed(self._timed(s.run, "detector_ms")) for name, s in sessions.items()}
        embedder.run_network = self._timed(embedder.run_network, "embedder_ms")  # type: ignore[method-assign]
        try:
            yield self
        finally:
            detector.sessions = sessions
            del embedder.run_network  # the instance attribute goes; the method shows through again
