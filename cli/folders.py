"""The folder a facebank is exported to and imported from: one sub-folder per person, and people.json.

The layout is the seed's, ``DIR/<person>/<photo>``, so a seed facebank imports as it is. An export
adds ``DIR/people.json`` with each person's name, external id and metadata (``ExportManifest``); an
import that finds it restores those instead of naming people after their folders.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import errors
from facebank.records import Person
from facebank.store import Facebank

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
MANIFEST = "people.json"
EXPORT_FORMAT = "rollcall-facebank-export"
PAGE_SIZE = 1000


# people.json, as export writes it and import reads it
class ExportedFace(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    file: str
    sha256: str


class ExportedPerson(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    folder: str
    display_name: str
    external_id: str | None
    metadata: dict[str, Any]
    faces: list[ExportedFace]


class ExportManifest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: Literal["rollcall-facebank-export"]
    version: Literal[1]
    people: list[ExportedPerson]


def read_manifest(root: Path) -> dict[str, ExportedPerson]:
    """``people.json`` of an export, by folder; empty when the folder has none (the seed's layout)."""
    path = root / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = ExportManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise errors.InvalidInput(f"{path} is not a rollcall export: {where}: {first['msg']}") from exc
    return {person.folder: person for person in manifest.people}


def iter_people(bank: Facebank, query: str | None = None) -> Iterator[Person]:
    """Everyone (or everyone whose name or external id contains ``query``), a page at a time."""
    offset = 0
    while True:
        page = bank.people.page(query, offset, PAGE_SIZE)
        yield from page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return
