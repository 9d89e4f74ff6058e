"""The classroom page: plain HTML, CSS and JavaScript in ``webapi/static``, no build step.

The page itself is public; everything it shows comes from the ``/v1`` API with the API key the
user enters once. A strict Content-Security-Policy keeps that key safe from injected script:
only this origin's own files run, and the page talks to no other origin.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, url_for

from webapi.validation import documented

bp = Blueprint("ui", __name__)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@bp.get("/")
@documented("Redirect to the browser page.", responses={302: None}, tag="ui", role=None)
def root() -> Any:
    return redirect(url_for("ui.page"))


@bp.get("/ui/")
@documented(
    "The classroom page (live view, attendance, people) for a browser.",
    responses={200: None},
    tag="ui",
    role=None,
)
def page() -> Any:
    response = current_app.send_static_file("index.html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response
