"""What of a job's arguments may be shown outside the worker: Flower's task list, events, logs.

Celery shows every task's ``argsrepr`` and ``kwargsrepr`` in its events (Flower lists them) and in
the message headers. Camera and callback URLs may carry a user and password (or a token in their
path or query), and uploads are megabytes of base64, so both apps (the workers' and the API's
client) build their messages with ``RedactingAMQP``: the reprs name a URL by scheme, host and port,
an upload by its length, and a callback's job JSON not at all. The arguments themselves travel
unchanged.
"""

from __future__ import annotations

from typing import Any

from celery.app.amqp import AMQP
from celery.utils.saferepr import saferepr

from sources.urls import is_camera_url, url_origin

REPR_MAX = 1024
LONG_TEXT = 200


def redacted(value: Any, key: str | None = None) -> Any:
    """``value`` with URLs cut to their origin, uploads and callback bodies replaced by a placeholder."""
    if key == "image_b64" and isinstance(value, str):
        return f"<base64 upload, {len(value)} chars>"
    if key == "payload" and isinstance(value, dict):
        return "<job JSON>"
    if isinstance(value, dict):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redacted(item) for item in value)
    if isinstance(value, str):
        if is_camera_url(value):
            scheme = value.split(":", 1)[0].lower()
            return f"{scheme}://{url_origin(value) or '?'}/…"
        if len(value) > LONG_TEXT:
            return f"<text, {len(value)} chars>"
    return value


def redacted_repr(value: Any) -> str:
    return saferepr(redacted(value), REPR_MAX)


class RedactingAMQP(AMQP):
    """Celery's message builder, with the argument reprs redacted (``Celery(amqp=...)``)."""

    def as_task_v2(
        self, task_id: str, name: str, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any
    ) -> Any:
        options["argsrepr"] = redacted_repr(tuple(args or ()))
        options["kwargsrepr"] = redacted_repr(dict(kwargs or {}))
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)
