"""``flask --app webapi facebank ...`` with the real app, Redis and worker processes.

The session's worker writes into the session's one facebank database, which other tests share:
each test here names its own people (the seed's folder names, or a fresh tag) and counts only
those. The round trip into a fresh database runs its own broker database and worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from cli.folders import iter_people
from cli.importing import find_person_by_external_id
from facebank.db import head_revision
from facebank.store import Facebank
from settings import Settings
from tests.conftest import ADMIN_KEY, WorkerProcess, free_port, migrated_app
from tests.postgres import temporary_database
from tests.shared_data import REPO_ROOT, shared_dir
from tests.webapi.photos import no_face_photo, one_face_photo
from webapi import create_app

pytestmark = pytest.mark.integration
# The seed's facebank: one folder per person (MANIFEST of datasets/facebank).
SEED = {
    "alex_lacamoire": ["img1.jpg"],
    "biden": ["biden.jpg", "biden2.jpg"],
    "kit_harington": ["john1.jpeg", "john2.jpeg"],
    "obama": ["obama.jpg", "obama2.jpg"],
    "rose_leslie": ["img1.jpg", "img2.jpg"],
}
TIMEOUT = ["--timeout", "180"]  # per photo; detection on a busy 2-core CPU takes seconds


def seed_dir() -> Path:
    path = shared_dir() / "datasets" / "facebank"
    missing = [
        f"{person}/{name}"
        for person, names in SEED.items()
        for name in names
        if not (path / person / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(f"seed facebank photos missing under {path}: {missing}")
    return path


def digests(folder: Path) -> set[str]:
    return {hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir() if f.is_file()}


def invoke(app: Any, *args: str) -> Result:
    result: Result = app.test_cli_runner().invoke(args=["facebank", *args])
    return result


def report(result: Result) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def bank_of(app: Any) -> Facebank:
    bank: Facebank = app.extensions["rollcall.facebank"]
    return bank


def seed_person(bank: Facebank, folder: str) -> Any:
    person = find_person_by_external_id(bank, folder)
    assert person is not None, f"no person with external id {folder!r}"
    return person


@pytest.fixture(scope="module")
def seed_import(app: Any, worker: WorkerProcess) -> Result:
    """The first import of the seed facebank into the session database."""
    bank = bank_of(app)
    seed = {digest for person in SEED for digest in digests(seed_dir() / person)}
    enrolled = {face.sha256 for person in iter_people(bank) for face in bank.faces.of_person(person.id)}
    if seed & enrolled or any(find_person_by_external_id(bank, folder) for folder in SEED):
        pytest.fail(
            "the session facebank already holds seed facebank people or photos: another test "
            "enrolled them; enrol copies (tests/webapi/photos.py) instead",
            pytrace=False,
        )
    return invoke(app, "import", str(seed_dir()), "--json", *TIMEOUT)


def test_import_enrols_one_person_per_folder(app: Any, seed_import: Result) -> None:
    assert seed_import.exit_code == 0, seed_import.output
    summary = report(seed_import)
    assert summary["ok"] is True
    assert (summary["people_created"], summary["people_found"], summary["people_failed"]) == (5, 0, 0)
    assert (summary["enrolled"], summary["already_enrolled"], summary["skipped"], summary["failed"]) == (
        9,
        0,
        0,
        0,
    )
    assert sorted(p["path"] for p in summary["photos"]) == sorted(
        f"{person}/{name}" for person, names in SEED.items() for name in names
    )
    bank = bank_of(app)
    for folder, names in SEED.items():
        person = seed_person(bank, folder)
        assert person.display_name == folder, "the seed named people by their folder, underscores kept"
        assert person.face_count == len(names)
        assert {face.sha256 for face in bank.faces.of_person(person.id)} == digests(seed_dir() / folder)


def test_second_import_enrols_nothing_new_and_reports_duplicates(app: Any, seed_import: Result) -> None:
    assert seed_import.exit_code == 0, seed_import.output
    before = bank_of(app).stats()
    result = invoke(app, "import", str(seed_dir()), *TIMEOUT)
    assert result.exit_code == 0, result.output
    assert (
        "people 0 created, 5 found; photos 0 enrolled, 9 already enrolled, 0 skipped, 0 failed"
        in result.stdout
    )
    for folder, names in SEED.items():
        for name in names:
            assert f"already enrolled  {folder}/{name}: duplicate_face: " in result.stdout
    after = bank_of(app).stats()
    assert (after.people, after.faces) == (before.people, before.faces)


def test_import_skips_non_images_and_reports_photos_without_a_face(
    app: Any, worker: WorkerProcess, tmp_path: Path
) -> None:
    root = tmp_path / "photos"
    folder = f"cli_extras_{uuid.uuid4().hex[:8]}"
    (root / folder).mkdir(parents=True)
    (root / folder / "notes.txt").write_text("not a photo")
    (root / folder / "blank.png").write_bytes(no_face_photo())
    (root / folder / "me.jpg").write_bytes(one_face_photo())
    (root / "README.md").write_text("a file outside any person folder")

    result = invoke(app, "import", str(root), "--json", *TIMEOUT)
    assert result.exit_code == 1, result.output
    summary = report(result)
    outcomes = {p["path"]: (p["outcome"], p["code"], p["reason"]) for p in summary["photos"]}
    assert outcomes[f"{folder}/me.jpg"][:2] == ("enrolled", None)
    assert outcomes[f"{folder}/notes.txt"] == ("skipped", None, "not an image file")
    assert outcomes["README.md"] == ("skipped", None, "not in a person folder")
    assert outcomes[f"{folder}/blank.png"][:2] == ("failed", "no_face")
    assert (summary["enrolled"], summary["skipped"], summary["failed"], summary["ok"]) == (1, 2, 1, False)
    person = seed_person(bank_of(app), folder)
    assert (person.display_name, person.face_count) == (folder, 1)

    again = invoke(app, "import", str(root), *TIMEOUT)
    assert again.exit_code == 1, again.output
    assert f"failed            {folder}/blank.png: no_face: " in again.stdout
    assert f"skipped           {folder}/notes.txt: not an image file" in again.stdout
    assert f"already enrolled  {folder}/me.jpg: duplicate_face: " in again.stdout
    assert (
        "people 0 created, 1 found; photos 0 enrolled, 1 already enrolled, 2 skipped, 1 failed"
        in again.stdout
    )


def test_import_finds_people_enrolled_by_hand_by_external_id_or_name_and_says_so(
    app: Any, client: Any, worker: WorkerProcess, tmp_path: Path
) -> None:
    # The README's "Try it" enrols "obama" as p-obama, then a seed-layout import has a folder "obama":
    # the folder must find that person by name, not create a second "obama".
    tag = uuid.uuid4().hex[:8]
    by_name = client.post("/v1/people", json={"display_name": f"Ada {tag}", "external_id": f"p-{tag}"})
    by_id = client.post("/v1/people", json={"display_name": f"Grace {tag}", "external_id": f"id-{tag}"})
    twins = [client.post("/v1/people", json={"display_name": f"Twin {tag}"}) for _ in range(2)]
    assert [r.status_code for r in (by_name, by_id, *twins)] == [201] * 4
    root = tmp_path / "photos"
    for folder in (f"ada {tag}", f"id-{tag}", f"Twin {tag}"):
        (root / folder).mkdir(parents=True)
        (root / folder / "me.jpg").write_bytes(one_face_photo())
    people_before = bank_of(app).stats().people

    result = invoke(app, "import", str(root), *TIMEOUT)
    assert result.exit_code == 1, result.output  # the twins' folder cannot be placed
    ada, grace = by_name.get_json(), by_id.get_json()
    assert (
        f"matched           ada {tag}/: person {ada['id']} (Ada {tag}, external id p-{tag}) by name"
        in result.stdout
    )
    assert (
        f"matched           id-{tag}/: person {grace['id']} (Grace {tag}, external id id-{tag}) "
        "by external id" in result.stdout
    )
    twins_line = f"failed            Twin {tag}/: ambiguous_person: 2 people are named 'Twin {tag}'"
    assert twins_line in result.stdout
    assert "people 0 created, 2 found; photos 2 enrolled" in result.stdout
    assert bank_of(app).stats().people == people_before, "nobody was created twice"
    assert [bank_of(app).people.get(p["id"]).face_count for p in (ada, grace)] == [1, 1]


def test_export_then_import_into_a_fresh_database_round_trips(
    app: Any, client: Any, seed_import: Result, system_factory: Any, tmp_path: Path
) -> None:
    assert seed_import.exit_code == 0, seed_import.output
    bank = bank_of(app)
    obama = seed_person(bank, "obama")
    assert client.patch(f"/v1/people/{obama.id}", json={"metadata": {"party": "D"}}).status_code == 200
    tag = uuid.uuid4().hex[:8]
    loner = client.post(
        "/v1/people", json={"display_name": f"No id {tag}", "metadata": {"tag": tag}}
    ).get_json()

    export_dir = tmp_path / "export"
    exported = invoke(app, "export", str(export_dir), "--json")
    assert exported.exit_code == 0, exported.output
    stats = bank.stats()
    assert report(exported)["people"] == stats.people and report(exported)["faces"] == stats.faces
    manifest = json.loads((export_dir / "people.json").read_text())
    entries = {entry["folder"]: entry for entry in manifest["people"]}
    for folder in SEED:
        entry = entries[folder]
        assert (entry["display_name"], entry["external_id"]) == (folder, folder)
        assert digests(export_dir / folder) == digests(seed_dir() / folder), (
            "the original photos, byte for byte"
        )
        assert sorted(p.name for p in (export_dir / folder).iterdir()) == sorted(
            f"{face['id']}.jpg" for face in entry["faces"]
        )
    assert entries["obama"]["metadata"] == {"party": "D"}
    assert entries[f"person-{loner['id']}"]["external_id"] is None

    # A fresh database needs a worker that writes into it, on its own broker databases.
    fresh_db = f"sqlite:///{tmp_path / 'fresh' / 'facebank.db'}"
    system = system_factory("cli-fresh", ROLLCALL_DATABASE_URL=fresh_db)
    env = system.env
    fresh_worker = system.worker()
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "webapi",
                "facebank",
                "import",
                str(export_dir),
                "--json",
                *TIMEOUT,
            ],
            env={**os.environ, **env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        fresh_worker.stop()
    summary = json.loads(process.stdout)
    fresh = Facebank.from_url(env["ROLLCALL_DATABASE_URL"])
    try:
        for folder in SEED:
            person = seed_person(fresh, folder)
            assert person.display_name == folder
            assert {face.sha256 for face in fresh.faces.of_person(person.id)} == digests(seed_dir() / folder)
            assert all(
                p["outcome"] == "enrolled" for p in summary["photos"] if p["path"].startswith(f"{folder}/")
            )
        assert seed_person(fresh, "obama").metadata == {"party": "D"}
        found = fresh.people.page(f"No id {tag}").items
        assert [(p.external_id, p.metadata) for p in found] == [(None, {"tag": tag})]
        fresh_stats = fresh.stats()
        assert fresh_stats.people == stats.people
        assert fresh_stats.faces == summary["enrolled"]
        assert [m.embeddings for m in fresh_stats.models] == [fresh_stats.faces]
    finally:
        fresh.close()
    assert process.returncode == (0 if summary["ok"] else 1), process.stderr


def test_export_refuses_a_folder_that_is_not_empty(app: Any, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = invoke(app, "export", str(tmp_path))
    assert result.exit_code == 1
    assert error_lines(result.output) == [
        f"Error: invalid_input: {tmp_path} exists and is not an empty folder; export into a new one"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_import_stops_with_job_timeout_when_no_worker_runs(system_factory: Any, tmp_path: Path) -> None:
    (tmp_path / "photos" / "someone").mkdir(parents=True)
    (tmp_path / "photos" / "someone" / "me.jpg").write_bytes(one_face_photo())
    # An isolated system whose broker databases no worker consumes.
    env = system_factory("cli-no-worker", ROLLCALL_DATABASE_URL=f"sqlite:///{tmp_path / 'facebank.db'}").env
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "webapi",
            "facebank",
            "import",
            str(tmp_path / "photos"),
            "--timeout",
            "2",
        ],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1
    errors = error_lines(process.stderr)
    assert len(errors) == 1 and errors[0].startswith(
        "Error: job_timeout: no worker finished the job within 2 s"
    )
    assert "celery -A tasks worker" in errors[0]
    assert "Traceback" not in process.stderr and "Exception ignored" not in process.stderr


def test_import_without_a_reachable_broker_fails_in_one_line_and_creates_nobody(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'facebank.db'}",
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
        result_backend=f"redis://127.0.0.1:{free_port()}/1",
        broker_timeout_s=0.5,
    )
    app = migrated_app(settings)
    try:
        result = invoke(app, "import", str(seed_dir()))
        assert result.exit_code == 1
        assert len(error_lines(result.output)) == 1
        assert error_lines(result.output)[0].startswith("Error: broker_unavailable: ")
        assert "Traceback" not in result.output
        assert bank_of(app).stats().people == 0
    finally:
        bank_of(app).close()


def test_stats_json_counts_what_the_api_counts(app: Any, client: Any) -> None:
    result = invoke(app, "stats", "--json")
    assert result.exit_code == 0, result.output
    cli = report(result)
    assert cli.pop("schema_revision") == head_revision()
    assert cli == client.get("/v1/facebank/stats").get_json()

    text = invoke(app, "stats")
    assert text.exit_code == 0
    assert f"people     {cli['people']}" in text.stdout
    assert f"faces      {cli['faces']}" in text.stdout


def test_migrate_prints_the_schema_revision(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'facebank.db'}"))
    try:
        result = invoke(app, "migrate")
        assert result.exit_code == 0, result.output
        assert f"at revision {head_revision()} (head {head_revision()})" in result.stdout
    finally:
        bank_of(app).close()


def down_database_url(password: str) -> str:
    """A PostgreSQL URL whose port nothing listens on (the password must never be printed)."""
    return f"postgresql+psycopg://rollcall:{password}@127.0.0.1:{free_port()}/rollcall"


@pytest.mark.parametrize(
    "command",
    [["-m", "webapi.cli", "migrate"], ["-m", "flask", "--app", "webapi", "facebank", "stats"]],
    ids=["migrate", "flask-stats"],
)
def test_a_command_with_the_database_down_fails_in_one_line_naming_it_without_its_password(
    command: list[str],
) -> None:
    url = down_database_url("pw-never-printed")
    process = subprocess.run(
        [sys.executable, *command],
        env={**os.environ, "ROLLCALL_DATABASE_URL": url},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 1
    assert process.stdout == ""
    (line,) = process.stderr.strip().splitlines()
    shown = url.replace("pw-never-printed", "***")
    assert line.startswith(f"Error: database_unavailable: facebank database {shown} is unavailable: ")
    assert "Connection refused" in line, "the reason"
    assert "pw-never-printed" not in process.stderr


def test_the_app_is_built_without_touching_the_database_and_answers_503_while_it_is_down() -> None:
    app = create_app(Settings(database_url=down_database_url("secret")))
    try:
        answer = app.test_client().get("/v1/people", headers={"X-API-Key": ADMIN_KEY})
        assert answer.status_code == 503
        assert answer.get_json()["error"]["code"] == "database_unavailable"
    finally:
        bank_of(app).close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_never_migrated_answers_503_naming_the_migrate_command(
    backend: str, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / 'never-migrated.db'}"
        else:
            url = stack.enter_context(temporary_database())
        app = create_app(Settings(database_url=url))
        stack.callback(bank_of(app).close)
        answer = app.test_client().get("/v1/people", headers={"X-API-Key": ADMIN_KEY})
        assert answer.status_code == 503
        error = answer.get_json()["error"]
        assert error["code"] == "database_unavailable"
        assert "no facebank tables yet" in error["message"]
        assert "run `python -m webapi.cli migrate`" in error["message"]
