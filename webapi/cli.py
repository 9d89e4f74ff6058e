"""``python -m webapi.cli COMMAND``: ``flask --app webapi facebank COMMAND`` without naming the app.

The commands themselves are ``cli.facebank``'s; this builds the API's app from the environment's
settings and runs them in it (``make run`` and compose's ``migrate`` service run ``migrate`` this way).
"""

from __future__ import annotations

from cli.facebank import facebank_cli
from webapi import create_app


def main(args: list[str] | None = None) -> None:
    with create_app().app_context():
        facebank_cli.main(args, prog_name="python -m webapi.cli")


if __name__ == "__main__":
    main()
