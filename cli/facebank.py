"""The ``facebank`` commands: migrate, import, export and count the facebank from a shell, and
re-encrypt camera passwords after a new secret key.

They run in the API's app (``flask --app webapi facebank ...``, or ``python -m webapi.cli ...``, which
builds it), with its settings, facebank and job client (``webapi.services``).

``migrate`` is the one step that brings the database to the newest schema: ``make run`` and the
compose file run it before the API starts (``create_app`` never migrates).

Expected failures (no worker, no broker, a bad folder) end the command with one line naming the
error code and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

import errors
from cli import exporting, importing
from cli.importing import ImportSummary, MatchedBy, Outcome
from facebank import db
from webapi.schemas import FacebankStatsOut
from webapi.services import current_settings, facebank, job_client

facebank_cli = AppGroup("facebank", help="Manage the facebank: migrate, import, export, stats.")
CommandT = TypeVar("CommandT", bound=Callable[..., Any])


def one_line_errors(command: CommandT) -> CommandT:
    """Show a rollcall error as ``Error: <code>: <message>`` with exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except errors.RollcallError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from exc

    return wrapper  # type: ignore[return-value]


@facebank_cli.command("migrate")
@one_line_errors
def migrate_command() -> None:
    """Bring the facebank database to the newest schema and print its revision (run before the API)."""
    url = current_settings().database_url
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        revision = db.current_revision(engine)
        click.echo(f"facebank {db.safe_url(engine.url)} at revision {revision} (head {db.head_revision()})")
    finally:
        engine.dispose()


@facebank_cli.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for each photo's job before giving up.",
)
@click.option(
    "--in-flight",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Jobs queued at once (enough to keep every worker busy).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@one_line_errors
def import_command(directory: Path, timeout_s: float, in_flight: int, as_json: bool) -> None:
    """Enrol DIRECTORY/<person>/<photo> (the seed's layout, or an export).

    Each folder is one person: the one with its external id (the folder name, or people.json's), else
    (without people.json) the one person of its name, else a new one. Every person found is reported
    with how it matched.
    Photos (jpg, jpeg, png, webp, bmp) are enrolled by `enrol_face` jobs, so a worker must be
    running (`celery -A tasks worker`); with none, the import stops with `job_timeout`.
    Photos already enrolled count as such, not as errors. Exit status 1 when a photo failed.
    """
    plan = importing.plan_import(directory)
    client = job_client()
    if plan.photo_count and not client.ping():
        # Checked before anyone is created, so an import that cannot run changes nothing.
        raise errors.BrokerUnavailable("the job queue (Redis) is unreachable")
    people, jobs, settled = importing.prepare_import(facebank(), plan)
    summary = ImportSummary(str(directory), people, settled)
    results = importing.enrol_photos(client, jobs, timeout_s, in_flight, current_settings().max_upload_bytes)
    try:
        with click.progressbar(results, length=len(jobs), label="Enrolling photos", file=sys.stderr) as bar:
            for photo in bar:
                summary.photos.append(photo)
    except (errors.JobTimeout, errors.BrokerUnavailable) as exc:
        hint = " (is a worker running? celery -A tasks worker)" if isinstance(exc, errors.JobTimeout) else ""
        raise click.ClickException(
            f"{exc.code}: {exc.message}{hint}. Import stopped after enrolling "
            f"{summary.count(Outcome.ENROLLED)} of {len(jobs)} photos; run it again to finish "
            "(it skips what is already enrolled)."
        ) from exc
    summary.photos.sort(key=lambda photo: photo.path)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        _print_import(summary)
    if not summary.ok:
        click.get_current_context().exit(1)


def _print_import(summary: ImportSummary) -> None:
    report = summary.to_json()
    click.echo(
        f"{report['directory']}: people {report['people_created']} created, {report['people_found']} found; "
        f"photos {report['enrolled']} enrolled, {report['already_enrolled']} already enrolled, "
        f"{report['skipped']} skipped, {report['failed']} failed"
    )
    for person in summary.people:
        if person.code is not None:
            click.echo(f"  failed            {person.folder}/: {person.code}: {person.reason}")
        elif person.matched_by is not None:
            external = f", external id {person.external_id}" if person.external_id else ""
            how = "name" if person.matched_by is MatchedBy.NAME else "external id"
            click.echo(
                f"  matched           {person.folder}/: person {person.person_id} "
                f"({person.display_name}{external}) by {how}"
            )
    for photo in summary.photos:
        if photo.outcome is Outcome.ENROLLED:
            continue
        label = photo.outcome.value.replace("_", " ")
        reason = f"{photo.code}: {photo.reason}" if photo.code else photo.reason
        click.echo(f"  {label:<17} {photo.path}: {reason}")


@facebank_cli.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@one_line_errors
def export_command(directory: Path, as_json: bool) -> None:
    """Write every person's original photos and people.json into DIRECTORY (new or empty).

    The layout is DIRECTORY/<external id or person-ID>/<face id>.<ext>; `facebank import`
    reads it back, names, external ids and metadata included.
    """
    summary = exporting.export_facebank(facebank(), directory)
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        click.echo(f"exported {summary.people} people and {summary.faces} photos to {summary.directory}")


@facebank_cli.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@one_line_errors
def stats_command(as_json: bool) -> None:
    """Count people, photos and embeddings per model; show the schema and data revisions."""
    bank = facebank()
    report = {"schema_revision": db.current_revision(bank.engine), **FacebankStatsOut.json_of(bank.stats())}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"facebank   {db.safe_url(bank.engine.url)} (schema {report['schema_revision']}, "
        f"revision {report['revision']})"
    )
    click.echo(f"people     {report['people']}")
    click.echo(f"faces      {report['faces']}")
    for model in report["models"]:
        click.echo(
            f"embeddings {model['embeddings']} by {model['model_name']} {model['model_version']} "
            f"({model['dim']}-D)"
        )
    if not report["models"]:
        click.echo("embeddings 0")


@facebank_cli.command("rotate-camera-passwords")
@one_line_errors
def rotate_camera_passwords_command() -> None:
    """Re-encrypt every camera password under the first key of ROLLCALL_SECRET_KEY (key rotation)."""
    count = facebank().cameras.rotate_passwords()
    click.echo(f"{count} camera password{'' if count == 1 else 's'} re-encrypted under the first key")
