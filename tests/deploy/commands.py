"""Command lines in deployment files: split them like a shell, and check they start a rollcall entry point.

A command is checked by the program it names, in this process: ``celery`` and ``gunicorn`` parse the
whole command line (an unknown option fails) without starting anything, the app it names must exist
(``-A tasks`` a Celery app, ``webapi:create_app()`` a factory that builds a Flask app), and
``python -m`` modules must have a ``main`` that accepts the arguments given.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import shlex
from typing import Any

from celery import Celery
from flask import Flask

from tests.product import product_modules, product_packages

PROJECT_MODULES = set(product_packages()) | set(product_modules())


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ``&&``, ``||``, ``;`` and ``|``), minus ``exit N``."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c and c[0] != "exit"]


def exec_commands(argv: list[str]) -> list[list[str]]:
    """An exec-form command, looking inside ``sh -c "..."``."""
    if len(argv) == 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c":
        return shell_commands(argv[2])
    return [argv]


def is_project_command(argv: list[str]) -> bool:
    if argv[0] in ("celery", "gunicorn"):
        return True
    return argv[0].startswith("python") and argv[1:2] == ["-m"] and argv[2].split(".")[0] in PROJECT_MODULES


def option(argv: list[str] | tuple[str, ...], *names: str) -> str | None:
    """The value of the first of ``names`` given as ``--name value`` or ``--name=value``."""
    for i, token in enumerate(argv):
        for name in names:
            if token == name and i + 1 < len(argv):
                return argv[i + 1]
            if token.startswith(f"{name}="):
                return token.split("=", 1)[1]
    return None


def _run_cli(main: Any, args: list[str]) -> tuple[int, str]:
    """Run a command-line ``main`` in this process; returns its exit code and output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(args)
        except SystemExit as exc:
            return (exc.code if isinstance(exc.code, int) else 1), out.getvalue()
    return 0, out.getvalue()


def entry_point_problem(argv: tuple[str, ...] | list[str]) -> str | None:
    """What is wrong with a command that should start a rollcall process; None when it is sound."""
    argv = list(argv)
    program = argv[0]
    if program == "celery":
        app_module = option(argv, "-A", "--app")
        if app_module is None:
            return "celery without -A/--app"
        app = getattr(importlib.import_module(app_module), "app", None)
        if not isinstance(app, Celery):
            return f"{app_module}.app is not a Celery app"
        from celery.bin.celery import celery as celery_cli

        # --help makes click parse every option (unknown ones fail) and stop before running anything.
        code, output = _run_cli(lambda a: celery_cli.main(a, prog_name="celery"), [*argv[1:], "--help"])
        return None if code == 0 else f"celery refuses the command line: {output.strip()[-300:]}"
    if program == "gunicorn":
        from gunicorn.config import Config

        code, output = _run_cli(lambda a: Config().parser().parse_args(a), list(argv[1:]))
        if code != 0:
            return f"gunicorn refuses the command line: {output.strip()[-300:]}"
        (target,) = Config().parser().parse_args(list(argv[1:])).args
        module, _, factory = target.partition(":")
        if not factory.endswith("()"):
            return f"{target}: expected an app factory call such as webapi:create_app()"
        app = getattr(importlib.import_module(module), factory[:-2])()
        return None if isinstance(app, Flask) else f"{target} does not build a Flask app"
    if program.startswith("python") and argv[1:2] == ["-m"]:
        module = importlib.import_module(argv[2])
        if hasattr(module, "__path__"):  # a package: `python -m` runs its __main__ module
            module = importlib.import_module(f"{argv[2]}.__main__")
        main = getattr(module, "main", None)
        if not callable(main):
            return f"{argv[2]} has no main()"
        code, output = _run_cli(main, [*argv[3:], "--help"])
        return None if code == 0 else f"python -m {argv[2]} refuses its arguments: {output.strip()[-300:]}"
    if program.startswith("python") and argv[1:2] == ["-c"]:
        compile(argv[2], "<healthcheck>", "exec")
        return None
    return f"{program} is not one of rollcall's entry points (celery, gunicorn, python -m/-c)"
