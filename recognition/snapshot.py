"""One facebank snapshot per job: gallery, people and threshold of one revision, read together.

A job reads the facebank's revision once (one single-row read); when it has not moved since the last
job, the worker's snapshot serves as it is. When it moved, the gallery, the people in it and the
applied threshold are read again and labelled with that revision. The revision is read before the
rest: a write landing in between makes the snapshot newer than its label, and the next job reads
once more; it is never served stale. This module is the only one the recognition reads the facebank
through.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

import torch

from contract.people import PersonOut
from facebank.store import Facebank
from recognition.gallery import Gallery


@dataclass(frozen=True, eq=False)
class FacebankSnapshot:
    """What a job matches against: the embedder's gallery, who is in it, and the match threshold."""

    revision: int
    gallery: Gallery
    people: Mapping[int, PersonOut]  # everyone with a face in the gallery, and any roster asked for
    threshold: float

    @classmethod
    def of(cls, gallery: Gallery, threshold: float) -> FacebankSnapshot:
        """A snapshot of a gallery without names (the benchmarks' in-process attendance)."""
        return cls(gallery.revision, gallery, {}, threshold)


class Snapshots:
    """The current snapshot for one embedder, kept per worker process and renewed when the revision moves.

    The threshold is ``configured`` (``ROLLCALL_MATCH_THRESHOLD``) when set, else the one applied in
    the facebank for the embedder, else the embedder's ``default_threshold``.
    """

    def __init__(
        self,
        facebank: Facebank,
        model_name: str,
        model_version: str,
        device: torch.device | str,
        configured_threshold: float | None,
        default_threshold: float,
    ) -> None:
        self.facebank = facebank
        self.model_name = model_name
        self.model_version = model_version
        self.device = torch.device(device)
        self.configured_threshold = configured_threshold
        self.default_threshold = default_threshold
        self._current: FacebankSnapshot | None = None
        self._lock = threading.Lock()

    def take(self, people: Collection[int] = ()) -> FacebankSnapshot:
        """The snapshot at the facebank's revision, also naming ``people`` (a roster) where they exist.

        People without a face in the gallery (enrolled without a photo yet) are read for the job that
        names them; people deleted since are left out.
        """
        revision = self.facebank.revision()
        with self._lock:
            current = self._current
            if current is None or current.revision != revision:
                current = self._current = self._read(revision)
        missing = sorted(set(people) - set(current.people))
        if not missing:
            return current
        extra = {p.id: PersonOut.model_validate(p) for p in self.facebank.people.get_many(missing)}
        return replace(current, people={**current.people, **extra})

    def _read(self, revision: int) -> FacebankSnapshot:
        rows = self.facebank.embeddings.gallery_rows(self.model_name, self.model_version)
        gallery = Gallery.from_rows(rows, self.model_name, self.model_version, revision, self.device)
        in_gallery = gallery.person_ids.cpu().tolist()
        people = {p.id: PersonOut.model_validate(p) for p in self.facebank.people.get_many(in_gallery)}
        return FacebankSnapshot(revision, gallery, people, self._threshold())

    def _threshold(self) -> float:
        if self.configured_threshold is not None:
            return self.configured_threshold
        applied = self.facebank.thresholds.get(self.model_name, self.model_version)
        return applied.threshold if applied is not None else self.default_threshold
