"""Access logs without credentials: the query string and any ``user:password@`` are cut from each line.

The seed routes take a camera URL in the query (``/modelfr?ip=http://user:pass@cam/``), so an access
log line with the query would hold the camera's password. One logging filter serves gunicorn's access
log (``gunicorn.access``: its arguments are a dict of atoms) and the development server's
(``werkzeug``: a tuple).
"""

from __future__ import annotations

import logging
import re
from typing import Any

ACCESS_LOGGERS = ("gunicorn.access", "werkzeug")
_QUERY = re.compile(r"\?[^\s\"]*")
_USERINFO = re.compile(r"(//)[^/\s\"@]*@")


def without_credentials(text: str) -> str:
    """A log field with its query string replaced by ``?…`` and any URL's userinfo removed."""
    return _USERINFO.sub(r"\1", _QUERY.sub("?…", text))


class DropCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = without_credentials(record.msg)
        args: Any = record.args
        if isinstance(args, dict):
            record.args = {
                key: (without_credentials(v) if isinstance(v, str) else v) for key, v in args.items()
            }
            if "q" in record.args:  # gunicorn's %(q)s is the bare query string
                record.args["q"] = ""
        elif isinstance(args, tuple):
            record.args = tuple(without_credentials(v) if isinstance(v, str) else v for v in args)
        return True


def install_access_log_filter() -> None:
    """Idempotent: each access logger gets the filter once, whatever number of apps is created."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropCredentials) for f in logger.filters):
            logger.addFilter(DropCredentials())
