"""One error handler: every failure leaves the API as ``{"error": {"code", "message"}}`` with its status."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from errors import PayloadTooLarge, RollcallError

log = logging.getLogger("rollcall.api")


def error_response(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RollcallError)
    def _rollcall_error(exc: RollcallError) -> tuple[Response, int]:
        response, status = error_response(exc.code, exc.message, exc.status)
        retry_after = getattr(exc, "retry_after_s", None)
        if status in (429, 503) and retry_after is not None:
            response.headers["Retry-After"] = str(max(1, int(retry_after)))
        return response, status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
        # Werkzeug refuses the body before any view runs; answer with the code the API documents.
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(
            PayloadTooLarge.code, f"the request body is larger than {limit} bytes", PayloadTooLarge.status
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "http_error").lower().replace(" ", "_")
        return error_response(code, exc.description or exc.name, exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # Logged with the stack trace for operators; the client gets no internals.
        log.exception("unhandled error")
        return error_response("internal_error", "internal error; see the API log", 500)
