"""Bulk import of a folder of photos into the facebank, one sub-folder per person (``cli.folders``).

Each folder's person is found (by external id, else by name) or created; its photos are enrolled by
``enrol_face`` jobs (the models live in the workers), so an import needs a running worker. Up to a
given number of jobs are queued at once, each polled until it ends.
"""

from __future__ import annotations

import base64
import enum
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import errors
from cli.folders import IMAGE_SUFFIXES, MANIFEST, iter_people, read_manifest
from contract.callers import OPERATOR
from contract.jobs import EnrolFaceArgs, EnrolFaceResult, FrameSource, read_result
from contract.records import JobState
from facebank.records import Person
from facebank.store import Facebank
from webapi.jobclient import JobClient

log = logging.getLogger("rollcall.cli")

# Polling a job: start fast (an enrolment takes ~0.3 s), back off to a few requests a second.
POLL_MIN_S = 0.02
POLL_MAX_S = 0.25


class Outcome(enum.StrEnum):
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"  # duplicate_face: this image (or a near-copy) is enrolled already
    SKIPPED = "skipped"  # not a photo: ignored, not an error
    FAILED = "failed"  # refused: no_face, multiple_faces, too_blurry, pose_too_far, outlier_face, ...


@dataclass(frozen=True)
class PhotoResult:
    """What happened to one file of the imported folder (``path`` relative to it)."""

    path: str
    outcome: Outcome
    person_id: int | None = None
    face_id: int | None = None
    code: str | None = None
    reason: str | None = None
    quality: dict[str, Any] | None = None  # what the enrolment quality gate measured (enrolled photos)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "outcome": self.outcome.value,
            "person_id": self.person_id,
            "face_id": self.face_id,
            "code": self.code,
            "reason": self.reason,
            "quality": self.quality,
        }


@dataclass(frozen=True)
class PersonFolder:
    """One person's folder, with who it names and which of its files are photos."""

    folder: str
    display_name: str
    external_id: str | None
    metadata: dict[str, Any]
    photos: tuple[Path, ...]
    others: tuple[Path, ...]
    # The seed's layout: the external id is only the folder name, a guess, so a person enrolled by hand
    # under another external id is still found by name (an export's people.json is not a guess).
    external_id_from_folder: bool = False


@dataclass(frozen=True)
class ImportPlan:
    root: Path
    people: tuple[PersonFolder, ...]
    stray_files: tuple[Path, ...]  # files directly in the root, outside any person folder

    @property
    def photo_count(self) -> int:
        return sum(len(person.photos) for person in self.people)


class MatchedBy(enum.StrEnum):
    """How an imported folder found a person already in the facebank."""

    EXTERNAL_ID = "external_id"
    NAME = "name"


@dataclass(frozen=True)
class PersonResult:
    folder: str
    person_id: int | None
    external_id: str | None
    created: bool
    code: str | None = None
    reason: str | None = None
    display_name: str | None = None
    matched_by: MatchedBy | None = None  # set when an existing person was found

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "person_id": self.person_id,
            "display_name": self.display_name,
            "external_id": self.external_id,
            "created": self.created,
            "matched_by": self.matched_by.value if self.matched_by else None,
            "code": self.code,
            "reason": self.reason,
        }


@dataclass
class ImportSummary:
    directory: str
    people: list[PersonResult] = field(default_factory=list)
    photos: list[PhotoResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(photo.outcome is outcome for photo in self.photos)

    @property
    def ok(self) -> bool:
        """Nothing failed: duplicates and non-photo files are not failures."""
        return self.count(Outcome.FAILED) == 0 and all(person.code is None for person in self.people)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "ok": self.ok,
            "people_created": sum(p.created for p in self.people),
            "people_found": sum(p.person_id is not None and not p.created for p in self.people),
            "people_failed": sum(p.code is not None for p in self.people),
            "enrolled": self.count(Outcome.ENROLLED),
            "already_enrolled": self.count(Outcome.ALREADY_ENROLLED),
            "skipped": self.count(Outcome.SKIPPED),
            "failed": self.count(Outcome.FAILED),
            "people": [person.to_json() for person in self.people],
            "photos": [photo.to_json() for photo in self.photos],
        }


@dataclass(frozen=True)
class PhotoJob:
    person_id: int
    path: Path
    relative: str


def plan_import(root: Path) -> ImportPlan:
    """Which people and photos ``root`` holds; nothing is written yet."""
    if not root.is_dir():
        raise errors.InvalidInput(f"{root} is not a folder")
    exported = read_manifest(root)
    people: list[PersonFolder] = []
    stray: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            if entry.name != MANIFEST:
                stray.append(entry)
            continue
        files = sorted(entry.iterdir())
        photos = tuple(f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        others = tuple(f for f in files if f not in photos)
        known = exported.get(entry.name)
        if known is None:
            # The seed's layout: the folder is the person (the seed's /modelin answered the folder name).
            people.append(PersonFolder(entry.name, entry.name, entry.name, {}, photos, others, True))
        else:
            name, external, metadata = known.display_name, known.external_id, known.metadata
            people.append(PersonFolder(entry.name, name, external, metadata, photos, others))
    return ImportPlan(root, tuple(people), tuple(stray))


def find_person_by_external_id(bank: Facebank, external_id: str) -> Person | None:
    """The person with exactly this external id (the store's search matches substrings, so filter)."""
    matches = (person for person in iter_people(bank, external_id) if person.external_id == external_id)
    return next(matches, None)


def find_people_by_name(bank: Facebank, display_name: str) -> list[Person]:
    """Everyone named exactly ``display_name``, ignoring case and surrounding spaces."""
    wanted = display_name.strip().casefold()
    people = iter_people(bank, wanted)
    return [person for person in people if person.display_name.strip().casefold() == wanted]


def _found(folder: PersonFolder, person: Person, matched_by: MatchedBy) -> PersonResult:
    return PersonResult(
        folder.folder,
        person.id,
        person.external_id,
        created=False,
        display_name=person.display_name,
        matched_by=matched_by,
    )


def find_or_create_person(bank: Facebank, folder: PersonFolder) -> PersonResult:
    """The folder's person: found by external id, else by name, else created.

    A name finds a person only in the seed's layout (the folder name is all there is) and only when one
    person has it. So ``facebank import`` after enrolling "obama" (external id ``p-obama``) by hand adds
    the folder's photos to that person instead of creating a second "obama". An export's folders are
    matched by their people.json external id alone, so two exported people of one name stay two.
    """
    try:
        if folder.external_id is not None:
            person = find_person_by_external_id(bank, folder.external_id)
            if person is not None:
                return _found(folder, person, MatchedBy.EXTERNAL_ID)
        # An export's people.json says who each folder is; only a bare folder name is a guess.
        named = find_people_by_name(bank, folder.display_name) if folder.external_id_from_folder else []
        if len(named) == 1:
            return _found(folder, named[0], MatchedBy.NAME)
        if len(named) > 1:
            ids = ", ".join(str(person.id) for person in named)
            raise errors.AmbiguousPerson(
                f"{len(named)} people are named {folder.display_name!r} (ids {ids}); rename the folder "
                "to the external id of the one meant"
            )
        person = bank.people.create(folder.display_name, folder.external_id, folder.metadata)
        return PersonResult(
            folder.folder, person.id, person.external_id, created=True, display_name=person.display_name
        )
    except errors.DuplicatePerson:
        # Another import created the person between the search and the insert.
        found = find_person_by_external_id(bank, folder.external_id) if folder.external_id else None
        if found is None:
            raise
        return _found(folder, found, MatchedBy.EXTERNAL_ID)
    except (errors.InvalidInput, errors.AmbiguousPerson) as exc:
        return PersonResult(folder.folder, None, folder.external_id, False, exc.code, exc.message)


def prepare_import(
    bank: Facebank, plan: ImportPlan
) -> tuple[list[PersonResult], list[PhotoJob], list[PhotoResult]]:
    """Find or create everyone; return them, the photos to enrol, and the files already settled."""
    people: list[PersonResult] = []
    jobs: list[PhotoJob] = []
    settled = skipped(plan.root, plan.stray_files, "not in a person folder")
    for folder in plan.people:
        person = find_or_create_person(bank, folder)
        people.append(person)
        settled += skipped(plan.root, folder.others, "not an image file")
        for photo in folder.photos:
            if person.person_id is None:
                settled.append(
                    PhotoResult(
                        relative(plan.root, photo),
                        Outcome.FAILED,
                        code=person.code,
                        reason=f"the person could not be found or created: {person.reason}",
                    )
                )
            else:
                jobs.append(PhotoJob(person.person_id, photo, relative(plan.root, photo)))
    return people, jobs, settled


def enrol_photos(
    client: JobClient, photos: Sequence[PhotoJob], timeout_s: float, in_flight: int, max_bytes: int
) -> Iterator[PhotoResult]:
    """Enrol each photo by an ``enrol_face`` job, yielding results in order as they finish.

    Up to ``in_flight`` jobs are queued at once so that every worker has work, without putting a
    whole photo library into Redis. ``JobTimeout`` (no worker answered) and ``BrokerUnavailable``
    stop the import: the jobs still queued are revoked and the error is raised.
    """
    pending: deque[tuple[PhotoJob, str]] = deque()
    try:
        for photo in photos:
            while len(pending) >= in_flight:
                yield _finish(client, *pending[0], timeout_s)
                pending.popleft()
            submitted = _submit(client, photo, max_bytes)
            if isinstance(submitted, PhotoResult):
                yield submitted
            else:
                pending.append((photo, submitted))
        while pending:
            yield _finish(client, *pending[0], timeout_s)
            pending.popleft()
    except (errors.JobTimeout, errors.BrokerUnavailable):
        _revoke(client, [job_id for _, job_id in pending])
        raise


def _submit(client: JobClient, photo: PhotoJob, max_bytes: int) -> str | PhotoResult:
    try:
        data = photo.path.read_bytes()
    except OSError as exc:
        return PhotoResult(
            photo.relative, Outcome.FAILED, photo.person_id, code="unreadable", reason=str(exc)
        )
    if len(data) > max_bytes:
        too_large = errors.PayloadTooLarge(f"the file is larger than the {max_bytes} bytes a job accepts")
        return _failed(photo, too_large)
    source = FrameSource(image_b64=base64.b64encode(data).decode("ascii"))
    return client.submit(EnrolFaceArgs(person_id=photo.person_id, source=source), OPERATOR)


def _finish(client: JobClient, photo: PhotoJob, job_id: str, timeout_s: float) -> PhotoResult:
    status = await_job(client, job_id, timeout_s)
    if status.state == "succeeded" and status.result is not None:
        enrolled = read_result(EnrolFaceResult, status.result)
        return PhotoResult(
            photo.relative,
            Outcome.ENROLLED,
            photo.person_id,
            face_id=enrolled.face_id,
            quality=enrolled.quality,
        )
    error = status.error or {"code": errors.RollcallError.code, "message": f"the job ended {status.state}"}
    outcome = Outcome.ALREADY_ENROLLED if error["code"] == errors.DuplicateFace.code else Outcome.FAILED
    return PhotoResult(photo.relative, outcome, photo.person_id, code=error["code"], reason=error["message"])


def await_job(client: JobClient, job_id: str, timeout_s: float) -> JobState:
    """Poll the job until it ends; ``JobTimeout`` when no worker finished it within ``timeout_s``.

    Polled rather than ``JobClient.wait``: a timed-out Celery ``get()`` stays subscribed to the
    result until the task ends, and a command that stops there would unsubscribe at interpreter
    shutdown and print an ignored-exception traceback.
    """
    deadline = time.monotonic() + timeout_s
    interval = POLL_MIN_S
    while True:
        status = client.status(job_id, OPERATOR)
        if status.state in ("succeeded", "failed", "revoked"):
            return status
        if time.monotonic() >= deadline:
            raise errors.JobTimeout(f"no worker finished the job within {timeout_s:g} s")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, POLL_MAX_S)


def _failed(photo: PhotoJob, exc: errors.RollcallError) -> PhotoResult:
    return PhotoResult(photo.relative, Outcome.FAILED, photo.person_id, code=exc.code, reason=exc.message)


def _revoke(client: JobClient, job_ids: Sequence[str]) -> None:
    """Cancel the jobs an interrupted import leaves queued (best effort: the broker may be gone)."""
    for index, job_id in enumerate(job_ids):
        try:
            client.revoke(job_id, OPERATOR)
        except errors.BrokerUnavailable as exc:
            log.warning("could not cancel %d queued enrol jobs: %s", len(job_ids) - index, exc.message)
            return


def skipped(root: Path, paths: Sequence[Path], reason: str) -> list[PhotoResult]:
    return [PhotoResult(relative(root, path), Outcome.SKIPPED, reason=reason) for path in paths]


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
