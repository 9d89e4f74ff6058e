"""A worker's facebank snapshot: reused while the revision stands, renewed (never stale) when it moves.

These carry the assertions of the gallery and threshold caches the snapshot replaced.
"""

from __future__ import annotations

import torch

from facebank.store import Facebank
from recognition.gallery import match_faces
from recognition.snapshot import Snapshots
from tests.facebank.factories import DIM, MODEL, enrol, unit_vectors

DEVICE = torch.device("cpu")
DEFAULT_THRESHOLD = 0.6


def snapshots(
    facebank: Facebank, model: tuple[str, str] = MODEL, configured: float | None = None
) -> Snapshots:
    return Snapshots(facebank, *model, DEVICE, configured, DEFAULT_THRESHOLD)


def test_snapshot_is_reused_until_the_facebank_changes(facebank: Facebank) -> None:
    cache = snapshots(facebank)
    ada = facebank.people.create("Ada")
    ada_vector, grace_vector = unit_vectors(2, seed=11)
    enrol(facebank, ada.id, "ada", ada_vector)

    first = cache.take()
    assert cache.take() is first
    assert first.revision == first.gallery.revision == facebank.revision()
    assert first.people[ada.id].display_name == "Ada"
    assert match_faces(grace_vector[None], first.gallery, threshold=0.9)[0].person_id is None

    grace = facebank.people.create("Grace")
    enrol(facebank, grace.id, "grace", grace_vector)
    refreshed = cache.take()

    assert refreshed is not first and refreshed.gallery.person_count == 2
    assert refreshed.people[grace.id].display_name == "Grace"
    assert match_faces(grace_vector[None], refreshed.gallery, threshold=0.9)[0].person_id == grace.id
    assert cache.take() is refreshed

    facebank.people.delete(grace.id)
    after_delete = cache.take()
    assert match_faces(grace_vector[None], after_delete.gallery, threshold=0.9)[0].person_id is None
    assert grace.id not in after_delete.people


def test_each_embedder_gets_its_own_gallery(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    face = enrol(facebank, person.id, "ada", unit_vectors(1, dim=DIM)[0])
    facebank.embeddings.put(face.id, "wide_model", "1", unit_vectors(1, dim=4 * DIM)[0])

    narrow, wide = snapshots(facebank).take(), snapshots(facebank, ("wide_model", "1")).take()

    assert (narrow.gallery.dim, wide.gallery.dim) == (DIM, 4 * DIM)
    assert snapshots(facebank, ("unknown_model", "1")).take().gallery.person_count == 0


def test_a_roster_names_people_without_a_face_and_leaves_out_deleted_ones(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")
    enrol(facebank, ada.id, "ada")
    newcomer = facebank.people.create("Newcomer")  # enrolled without a photo yet
    cache = snapshots(facebank)

    taken = cache.take([ada.id, newcomer.id, 10_000])

    assert taken.people[newcomer.id].display_name == "Newcomer"
    assert 10_000 not in taken.people
    assert newcomer.id not in cache.take().people  # named for that job only


def test_an_applied_threshold_is_seen_by_the_next_snapshot(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    enrol(facebank, person.id, "ada")
    cache = snapshots(facebank)
    assert cache.take().threshold == DEFAULT_THRESHOLD

    facebank.thresholds.apply(*MODEL, 0.42)
    assert cache.take().threshold == 0.42
    assert snapshots(facebank, (MODEL[0], "another-version")).take().threshold == DEFAULT_THRESHOLD
    facebank.thresholds.apply(*MODEL, 0.5)  # replaces: one value per model version
    assert cache.take().threshold == 0.5

    facebank.thresholds.clear(*MODEL)
    assert cache.take().threshold == DEFAULT_THRESHOLD


def test_a_configured_threshold_wins_over_the_applied_one(facebank: Facebank) -> None:
    facebank.thresholds.apply(*MODEL, 0.42)
    assert snapshots(facebank, configured=0.3).take().threshold == 0.3
