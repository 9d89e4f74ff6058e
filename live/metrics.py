"""A stream reader's Prometheus metrics: cameras held, frames, lease handovers, reconnects, latency.

Recorded by the reader's threads into the process's registry; a reader is a worker (``tasks.live``), so
it serves them with the worker's own ``/metrics`` (``ROLLCALL_WORKER_METRICS_PORT``, the solo pool).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

# From a frame handed on at once to a processor that lags a few frames behind at 5 frames/s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class LiveMetrics:
    """The metric families of a stream reader."""

    cameras: Gauge
    frames: Counter
    handovers: Counter
    reconnects: Counter
    event_latency: Histogram
    sink_failures: Counter


@functools.cache
def live_metrics() -> LiveMetrics:
    """This process's live metrics, created on first use."""
    return LiveMetrics(
        cameras=Gauge(
            "rollcall_live_cameras",
            "Live cameras this reader holds the lease of and reads (state held).",
            ["state"],
            multiprocess_mode="livesum",
        ),
        frames=Counter(
            "rollcall_live_frames",
            "Frames of live cameras: decoded (every frame the stream gave), shared (handed on at "
            "ROLLCALL_LIVE_FPS and written to Redis), processed, dropped (handed on while the processor was "
            "still busy with the camera's last one, or too large to share), failed (the processor raised, "
            "or a sink did not take the frame).",
            ["camera", "outcome"],
        ),
        handovers=Counter(
            "rollcall_live_lease_handovers",
            "Cameras this reader took over from a reader that stopped renewing its lease (died, or lost "
            "Redis), and leases this reader lost that way.",
            ["direction"],
        ),
        reconnects=Counter(
            "rollcall_live_reconnects",
            "Times a live camera's stream broke or could not be opened, by camera and error code; the "
            "reader connects again after a pause.",
            ["camera", "code"],
        ),
        event_latency=Histogram(
            "rollcall_live_event_latency_seconds",
            "Seconds from a frame's decoding to its live event's publication (processing included).",
            buckets=LATENCY_BUCKETS,
        ),
        sink_failures=Counter(
            "rollcall_live_sink_failures",
            "Processed frames or ended tracks a sink (event channel, MQTT, webhook, session) did not take; "
            "the reader's log says why. The other sinks still took them.",
            ["sink"],
        ),
    )
