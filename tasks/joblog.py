"""The one log line each job leaves: JSON after the word ``job``, safe to ship to a shared log store.

    job {"job_id": "…", "job": "detect", "outcome": "succeeded", "source": "camera",
         "camera": "192.168.1.20:80", "faces": 2, "timings_ms": {"fetch": 41.2, …, "total": 380.5}}

A camera URL is named by host and port only: it may carry a user and password, and its path or
query a token. A registered camera is named by its name (``"source": "registered camera"``). The
line never holds frame bytes, base64 data or people's names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from contract.jobs import JobAnswer
from sources.urls import url_origin


def job_line(
    job_id: str | None,
    job: str,
    outcome: str,
    source: object,
    result: JobAnswer | None,
    timings_ms: Mapping[str, float],
) -> str:
    """The log line of one finished job (``outcome``: succeeded, revoked or an error code)."""
    fields = {
        "job_id": job_id,
        "job": job,
        "outcome": outcome,
        **source_fields(source),
        "faces": faces_reported(result),
        "timings_ms": dict(timings_ms),
    }
    return "job " + json.dumps(fields)


def source_fields(source: object) -> dict[str, str | None]:
    """Where the frame came from: ``camera`` with its host:port, a registered camera's name, ``upload``."""
    if not isinstance(source, Mapping):
        return {"source": None}
    if "url" in source:
        return {"source": "camera", "camera": url_origin(str(source["url"]))}
    if "camera" in source:
        return {"source": "registered camera", "camera": str(source["camera"])}
    if "image_b64" in source:
        return {"source": "upload"}
    return {"source": None}


def faces_reported(result: JobAnswer | None) -> int | None:
    """How many faces a job's answer reports; None for a failed job or one without faces."""
    return result.reported_faces() if result is not None else None
