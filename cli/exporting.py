"""Export of the facebank: every person's original photos and people.json, re-importable.

The layout is ``DIR/<external id or person-ID>/<face id>.<ext>`` (``cli.folders``); ``facebank import``
reads it back, names, external ids and metadata included.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import errors
from cli.folders import EXPORT_FORMAT, MANIFEST, iter_people
from contract.people import FaceRecordOut
from facebank.records import Person
from facebank.store import Facebank

log = logging.getLogger("rollcall.cli")

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/bmp": "bmp"}
# What an exported person's folder may be called when it is their external id; anything else
# (slashes, leading dots, control characters) becomes person-<id>.
_SAFE_FOLDER = re.compile(r"[^\W_.][\w.@+ -]{0,127}")


@dataclass(frozen=True)
class ExportSummary:
    directory: str
    people: int
    faces: int

    def to_json(self) -> dict[str, Any]:
        return {"directory": self.directory, "people": self.people, "faces": self.faces}


def export_facebank(bank: Facebank, root: Path) -> ExportSummary:
    """Write every person's original photos and ``people.json`` into ``root`` (new or empty)."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise errors.InvalidInput(f"{root} exists and is not an empty folder; export into a new one")
    root.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    people: list[dict[str, Any]] = []
    face_total = 0
    for person in iter_people(bank):
        try:
            faces = bank.faces.of_person(person.id)
        except errors.PersonNotFound:
            log.info("person %d was deleted during the export; left out", person.id)
            continue
        folder = _folder_name(person, used)
        (root / folder).mkdir()
        exported_faces = []
        for face in faces:
            try:
                image = bank.faces.image(face.id)
            except errors.FaceNotFound:
                log.info("face %d was deleted during the export; left out", face.id)
                continue
            name = f"{face.id}.{_EXTENSIONS.get(face.content_type, 'bin')}"
            (root / folder / name).write_bytes(image.data)
            exported_faces.append({**FaceRecordOut.json_of(face), "file": name})
        face_total += len(exported_faces)
        people.append(
            {
                "id": person.id,
                "folder": folder,
                "display_name": person.display_name,
                "external_id": person.external_id,
                "metadata": person.metadata,
                "faces": exported_faces,
            }
        )
    manifest = {"format": EXPORT_FORMAT, "version": 1, "people": people}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return ExportSummary(str(root), len(people), face_total)


def _folder_name(person: Person, used: set[str]) -> str:
    """The external id when it is a safe, unused folder name, else ``person-<id>``.

    Unique case-insensitively, so an export also survives a case-insensitive file system.
    """
    external = person.external_id
    candidate = external if external and _SAFE_FOLDER.fullmatch(external) else f"person-{person.id}"
    if candidate.lower() in used:
        candidate = f"person-{person.id}"
    suffix = 1
    while candidate.lower() in used:
        suffix += 1
        candidate = f"person-{person.id}-{suffix}"
    used.add(candidate.lower())
    return candidate
