"""rollcall's HTTP API: a Flask app factory (``flask --app webapi run``).

The API validates requests, submits jobs to Celery by task name and reads their results;
it imports no ``ml`` and no ``tasks`` module, so it loads no model, builds no worker app and starts
in a second.
"""

from __future__ import annotations

from flask import Flask

from settings import Settings, get_settings


def create_app(config: Settings | None = None) -> Flask:
    """Build the app from ``config`` (default: the environment's settings).

    It opens no connection: the facebank must already be migrated (``python -m webapi.cli migrate``),
    and a database that is down answers 503 ``database_unavailable`` on the routes that need it.
    """
    from cli.facebank import facebank_cli
    from webapi import calibration, cameras, events, health, jobs, legacy, live, people, rosters, sessions, ui
    from webapi.accesslog import install_access_log_filter
    from webapi.auth import install_auth
    from webapi.errors import register_error_handlers
    from webapi.services import install_services
    from webapi.validation import refuse_ids_out_of_range, refuse_oversized_stream

    settings = config or get_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes  # the largest request body, as documented
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_services(app, settings)
    register_error_handlers(app)
    install_access_log_filter()
    install_auth(app, settings)
    app.before_request(refuse_ids_out_of_range)  # these two after the key check
    app.before_request(refuse_oversized_stream)
    for blueprint in (
        jobs.bp,
        people.bp,
        calibration.bp,
        rosters.bp,
        sessions.bp,
        cameras.bp,
        live.bp,
        events.bp,
        legacy.bp,
        health.bp,
        ui.bp,
    ):
        app.register_blueprint(blueprint)
    app.cli.add_command(facebank_cli)
    return app
