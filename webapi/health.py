"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from kombu.exceptions import OperationalError

from webapi.schemas import Health
from webapi.services import current_settings, job_client
from webapi.validation import documented, openapi_document

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@documented("The API process is alive.", responses={200: Health}, tag="health", role=None)
def healthz() -> Any:
    return jsonify({"status": "ok", "checks": {}})


@bp.get("/readyz")
@documented(
    "Ready: the broker answers and a worker consumes the model queue.",
    responses={200: Health, 503: Health},
    tag="health",
    role=None,
)
def readyz() -> Any:
    client = job_client()
    settings = current_settings()
    checks: dict[str, Any] = {"broker": client.ping(), "workers": 0}
    if checks["broker"]:
        try:
            queues = client.celery.control.inspect(timeout=1.0).active_queues() or {}
        except (OperationalError, OSError):
            queues = {}
        checks["workers"] = sum(
            1 for qs in queues.values() if any(q.get("name") == settings.model_queue for q in qs)
        )
    ready = checks["broker"] and checks["workers"] > 0
    return jsonify({"status": "ready" if ready else "not_ready", "checks": checks}), 200 if ready else 503


@bp.get("/openapi.json")
@documented("This OpenAPI document.", responses={200: None}, tag="health", role=None)
def openapi() -> Any:
    return jsonify(openapi_document(current_app))
