"""The facebank store on SQLite and PostgreSQL: people, photos, embeddings and the revision."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

import errors
from contract.people import FaceRecordOut, PersonOut
from facebank import models
from facebank.store import Facebank
from tests.facebank.factories import BOX, DIM, LANDMARKS, MODEL, enrol, fake_photo, unit_vectors

OTHER_MODEL = ("other_model", "2")


def row_counts(facebank: Facebank) -> dict[str, int]:
    """What is physically left in the tables, read around the store."""
    with facebank.engine.connect() as connection:
        return {
            table.__tablename__: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (models.Person, models.FaceImage, models.Embedding)
        }


# --- people ---


def test_created_person_reads_back_with_all_fields(facebank: Facebank) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = facebank.people.create(
        "  Ada Lovelace ", external_id="S-001", metadata={"class": "7B", "year": 7}
    )

    fetched = facebank.people.get(created.id)

    assert fetched == created
    assert fetched.display_name == "Ada Lovelace"
    assert fetched.external_id == "S-001"
    assert fetched.metadata == {"class": "7B", "year": 7}
    assert fetched.face_count == 0
    assert fetched.created_at >= before and fetched.created_at.tzinfo is not None


def test_get_people_returns_those_still_there_in_the_order_asked(facebank: Facebank) -> None:
    ada, grace, alan = (facebank.people.create(name) for name in ("Ada", "Grace", "Alan"))
    facebank.people.delete(grace.id)

    found = facebank.people.get_many([alan.id, grace.id, ada.id, alan.id, 999])

    assert [p.display_name for p in found] == ["Alan", "Ada"]
    assert facebank.people.get_many([]) == []


def test_records_convert_to_json(facebank: Facebank) -> None:
    person = facebank.people.create("Ada", external_id="S-001", metadata={"class": "7B"})
    face = enrol(facebank, person.id, "ada")

    person_json = json.loads(json.dumps(PersonOut.json_of(facebank.people.get(person.id))))
    face_json = json.loads(json.dumps(FaceRecordOut.json_of(face)))

    assert person_json["display_name"] == "Ada" and person_json["face_count"] == 1
    assert datetime.fromisoformat(person_json["created_at"]) == person.created_at
    assert face_json["box"] == list(BOX) and face_json["person_id"] == person.id


def test_unknown_person_is_person_not_found(facebank: Facebank) -> None:
    with pytest.raises(errors.PersonNotFound, match="404"):
        facebank.people.get(404)
    with pytest.raises(errors.PersonNotFound):
        facebank.people.update(404, display_name="x")
    with pytest.raises(errors.PersonNotFound):
        facebank.people.delete(404)
    with pytest.raises(errors.PersonNotFound):
        facebank.faces.of_person(404)


def test_external_id_is_unique_on_create_and_update(facebank: Facebank) -> None:
    first = facebank.people.create("Ada", external_id="S-001")
    second = facebank.people.create("Grace", external_id="S-002")

    with pytest.raises(errors.DuplicatePerson, match=f"S-001.*person {first.id}"):
        facebank.people.create("Impostor", external_id="S-001")
    with pytest.raises(errors.DuplicatePerson, match=f"person {first.id}"):
        facebank.people.update(second.id, external_id="S-001")

    assert facebank.people.get(second.id).external_id == "S-002"
    assert facebank.people.page().total == 2


def test_people_without_external_id_do_not_collide(facebank: Facebank) -> None:
    facebank.people.create("Ada")
    facebank.people.create("Grace")
    assert facebank.people.page().total == 2


def test_list_people_pages_in_enrolment_order_with_total(facebank: Facebank) -> None:
    created = [facebank.people.create(f"Person {i:02d}") for i in range(7)]

    pages = [facebank.people.page(offset=offset, limit=3) for offset in (0, 3, 6, 9)]

    assert [page.total for page in pages] == [7, 7, 7, 7]
    assert [[p.id for p in page.items] for page in pages] == [
        [p.id for p in created[0:3]],
        [p.id for p in created[3:6]],
        [created[6].id],
        [],
    ]


def test_list_people_search_matches_name_or_external_id_ignoring_case(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada Lovelace", external_id="CS-1815")
    grace = facebank.people.create("Grace Hopper", external_id="NAVY-1906")
    facebank.people.create("Alan Turing", external_id="CS-1912")

    assert [p.id for p in facebank.people.page("lovelace").items] == [ada.id]
    assert [p.id for p in facebank.people.page("navy").items] == [grace.id]
    by_prefix = facebank.people.page("cs-", limit=1)
    assert by_prefix.total == 2 and len(by_prefix.items) == 1
    assert facebank.people.page("  ").total == 3
    assert facebank.people.page("nobody").items == ()


def test_search_treats_wildcards_literally(facebank: Facebank) -> None:
    facebank.people.create("100% attendance")
    facebank.people.create("Plain name")

    assert [p.display_name for p in facebank.people.page("%").items] == ["100% attendance"]
    assert facebank.people.page("_").total == 0


@pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, 0), (0, 100_000)])
def test_list_people_refuses_bad_paging(facebank: Facebank, offset: int, limit: int) -> None:
    with pytest.raises(errors.InvalidInput):
        facebank.people.page(offset=offset, limit=limit)


def test_update_person_changes_only_the_given_fields(facebank: Facebank) -> None:
    person = facebank.people.create("Ada", external_id="S-001", metadata={"class": "7B"})

    renamed = facebank.people.update(person.id, display_name="Ada King")
    assert (renamed.display_name, renamed.external_id, renamed.metadata) == (
        "Ada King",
        "S-001",
        {"class": "7B"},
    )
    assert renamed.updated_at >= person.updated_at

    cleared = facebank.people.update(person.id, external_id=None, metadata={"class": "8A"})
    assert (cleared.display_name, cleared.external_id, cleared.metadata) == (
        "Ada King",
        None,
        {"class": "8A"},
    )
    assert facebank.people.get(person.id) == cleared


@pytest.mark.parametrize(
    "change",
    [
        {"display_name": ""},
        {"display_name": "   "},
        {"external_id": ""},
        {"metadata": ["not", "an", "object"]},
    ],
)
def test_update_person_refuses_invalid_values(facebank: Facebank, change: dict[str, Any]) -> None:
    person = facebank.people.create("Ada")
    with pytest.raises(errors.InvalidInput):
        facebank.people.update(person.id, **change)
    assert facebank.people.get(person.id) == person


def test_metadata_must_be_json(facebank: Facebank) -> None:
    with pytest.raises(errors.InvalidInput, match="metadata"):
        facebank.people.create("Ada", metadata={"when": datetime.now(UTC)})
    assert facebank.people.page().total == 0


# --- faces ---


def test_added_face_keeps_original_photo_and_embedding(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    vector = unit_vectors(1)[0]

    face = enrol(facebank, person.id, "ada-1", vector)

    assert face.person_id == person.id
    assert (face.width, face.height, face.content_type) == (640, 480, "image/jpeg")
    assert face.box == BOX
    assert face.landmarks == tuple(float(v) for v in LANDMARKS.reshape(-1))
    assert facebank.faces.of_person(person.id) == [face]
    assert facebank.faces.get(face.id) == face
    assert facebank.people.get(person.id).face_count == 1
    image = facebank.faces.image(face.id)
    assert (image.data, image.content_type, image.person_id) == (fake_photo("ada-1"), "image/jpeg", person.id)
    rows = facebank.embeddings.gallery_rows(*MODEL)
    assert rows.person_ids.tolist() == [person.id] and rows.face_ids.tolist() == [face.id]
    assert rows.vectors.dtype == np.float32
    np.testing.assert_array_equal(rows.vectors[0], vector)


def test_face_for_unknown_person_is_refused_and_nothing_stored(facebank: Facebank) -> None:
    with pytest.raises(errors.PersonNotFound):
        enrol(facebank, 999, "orphan")
    assert row_counts(facebank) == {"people": 0, "face_images": 0, "embeddings": 0}


def test_same_photo_is_refused_even_for_another_person(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")
    grace = facebank.people.create("Grace")
    face = enrol(facebank, ada.id, "shared-photo")
    revision = facebank.revision()

    with pytest.raises(errors.DuplicateFace, match=f"face {face.id} of person {ada.id}"):
        enrol(facebank, grace.id, "shared-photo")
    with pytest.raises(errors.DuplicateFace):
        enrol(facebank, ada.id, "shared-photo")

    assert facebank.faces.of_person(grace.id) == []
    assert row_counts(facebank) == {"people": 2, "face_images": 1, "embeddings": 1}
    assert facebank.revision() == revision


@pytest.mark.parametrize(
    "bad",
    [
        {"embedding": np.zeros(DIM, dtype=np.float32)},
        {"embedding": np.full(DIM, np.nan, dtype=np.float32)},
        {"embedding": np.ones((2, DIM), dtype=np.float32)},
        {"box": (1.0, 2.0, 3.0)},
        {"landmarks": np.zeros((4, 2))},
        {"image_bytes": b""},
        {"width": 0},
    ],
)
def test_add_face_refuses_malformed_input(facebank: Facebank, bad: dict[str, Any]) -> None:
    person = facebank.people.create("Ada")
    arguments: dict[str, Any] = {
        "person_id": person.id,
        "image_bytes": fake_photo("x"),
        "content_type": "image/jpeg",
        "width": 640,
        "height": 480,
        "box": BOX,
        "landmarks": LANDMARKS,
        "embedding": unit_vectors(1)[0],
        "model_name": MODEL[0],
        "model_version": MODEL[1],
    } | bad
    with pytest.raises(errors.InvalidInput):
        facebank.faces.add(**arguments)
    assert row_counts(facebank)["face_images"] == 0


def test_embedding_of_another_dimension_is_refused_for_the_same_model(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    enrol(facebank, person.id, "first", unit_vectors(1, dim=DIM)[0])

    with pytest.raises(errors.InvalidInput, match="dimensions"):
        enrol(facebank, person.id, "second", unit_vectors(1, dim=DIM * 2)[0])
    enrol(facebank, person.id, "third", unit_vectors(1, dim=DIM * 2)[0], model=OTHER_MODEL)

    assert facebank.people.get(person.id).face_count == 2


def test_delete_person_removes_their_photos_and_embeddings(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")
    grace = facebank.people.create("Grace")
    ada_faces = [enrol(facebank, ada.id, f"ada-{i}") for i in range(3)]
    facebank.embeddings.put(ada_faces[0].id, *OTHER_MODEL, unit_vectors(1)[0])
    grace_face = enrol(facebank, grace.id, "grace-1")

    assert facebank.people.delete(ada.id) == 3

    assert row_counts(facebank) == {"people": 1, "face_images": 1, "embeddings": 1}
    with pytest.raises(errors.PersonNotFound):
        facebank.people.get(ada.id)
    with pytest.raises(errors.FaceNotFound):
        facebank.faces.image(ada_faces[0].id)
    with pytest.raises(errors.FaceNotFound):
        facebank.faces.get(ada_faces[1].id)
    assert facebank.embeddings.gallery_rows(*MODEL).face_ids.tolist() == [grace_face.id]
    assert facebank.embeddings.gallery_rows(*OTHER_MODEL).face_ids.size == 0


def test_delete_face_removes_only_that_face(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")
    grace = facebank.people.create("Grace")
    keep, drop = enrol(facebank, ada.id, "keep"), enrol(facebank, ada.id, "drop")

    with pytest.raises(errors.FaceNotFound):
        facebank.faces.delete(grace.id, drop.id)
    facebank.faces.delete(ada.id, drop.id)

    assert facebank.faces.of_person(ada.id) == [keep]
    assert facebank.embeddings.gallery_rows(*MODEL).face_ids.tolist() == [keep.id]
    with pytest.raises(errors.FaceNotFound):
        facebank.faces.delete(ada.id, drop.id)
    # The photo can be enrolled again once deleted.
    assert enrol(facebank, ada.id, "drop").person_id == ada.id


def test_ids_of_deleted_people_and_faces_are_never_reused(facebank: Facebank) -> None:
    # A job result naming person 1 or face 1 must never come to mean somebody new.
    person = facebank.people.create("Ada")
    face = enrol(facebank, person.id, "ada")
    facebank.people.delete(person.id)

    newcomer = facebank.people.create("Grace")
    new_face = enrol(facebank, newcomer.id, "ada")

    assert newcomer.id > person.id and new_face.id > face.id


# --- re-embedding with a new model ---


def test_faces_needing_embedding_then_set_embedding_fills_a_new_model(facebank: Facebank) -> None:
    people = [facebank.people.create(f"P{i}") for i in range(3)]
    faces = [
        enrol(facebank, person.id, f"photo-{i}-{j}") for i, person in enumerate(people) for j in range(2)
    ]
    faces.append(enrol(facebank, people[0].id, "already", model=OTHER_MODEL))
    facebank.embeddings.put(faces[-1].id, *OTHER_MODEL, unit_vectors(1, seed=9)[0])

    pending = list(facebank.embeddings.pending(*OTHER_MODEL, batch_size=2))

    assert [p.face_id for p in pending] == [face.id for face in faces[:-1]]
    assert pending[0].image_bytes == fake_photo("photo-0-0")
    np.testing.assert_array_equal(pending[0].landmarks, LANDMARKS)
    vectors = unit_vectors(len(pending), seed=3)
    for item, vector in zip(pending, vectors, strict=True):
        facebank.embeddings.put(item.face_id, *OTHER_MODEL, vector)

    assert list(facebank.embeddings.pending(*OTHER_MODEL)) == []
    rows = facebank.embeddings.gallery_rows(*OTHER_MODEL)
    assert rows.face_ids.tolist() == sorted(face.id for face in faces)
    np.testing.assert_array_equal(rows.vectors[:-1], vectors)


def test_set_embedding_replaces_the_previous_vector(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    face = enrol(facebank, person.id, "ada", unit_vectors(1, seed=1)[0])
    replacement = unit_vectors(1, seed=2)[0]

    facebank.embeddings.put(face.id, *MODEL, replacement)

    rows = facebank.embeddings.gallery_rows(*MODEL)
    assert rows.face_ids.tolist() == [face.id]
    np.testing.assert_array_equal(rows.vectors[0], replacement)
    with pytest.raises(errors.FaceNotFound):
        facebank.embeddings.put(12345, *MODEL, replacement)


def test_gallery_rows_of_an_unknown_model_are_empty(facebank: Facebank) -> None:
    rows = facebank.embeddings.gallery_rows("nobody", "0")
    assert rows.person_ids.shape == (0,) and rows.face_ids.shape == (0,) and rows.vectors.shape[0] == 0


def test_stats_count_people_faces_and_embeddings_per_model(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    face = enrol(facebank, person.id, "a")
    enrol(facebank, person.id, "b")
    facebank.embeddings.put(face.id, *OTHER_MODEL, unit_vectors(1, dim=128)[0])

    stats = facebank.stats()

    assert (stats.people, stats.faces, stats.revision) == (1, 2, facebank.revision())
    assert [(m.model_name, m.model_version, m.dim, m.embeddings) for m in stats.models] == [
        ("other_model", "2", 128, 1),
        ("test_model", "1", DIM, 2),
    ]


# --- revision ---


def test_revision_moves_with_every_change_and_only_then(facebank: Facebank) -> None:
    assert facebank.revision() == 0
    person = facebank.people.create("Ada")
    face_holder: dict[str, int] = {}

    def add() -> None:
        face_holder["id"] = enrol(facebank, person.id, "photo").id

    changes: list[tuple[str, Callable[[], object]]] = [
        ("update", lambda: facebank.people.update(person.id, display_name="Ada K")),
        ("add face", add),
        (
            "set embedding",
            lambda: facebank.embeddings.put(face_holder["id"], *OTHER_MODEL, unit_vectors(1)[0]),
        ),
        ("delete face", lambda: facebank.faces.delete(person.id, face_holder["id"])),
        ("delete person", lambda: facebank.people.delete(person.id)),
    ]
    for name, change in changes:
        before = facebank.revision()
        change()
        assert facebank.revision() == before + 1, name

    settled = facebank.revision()
    facebank.people.page()
    facebank.stats()
    facebank.embeddings.gallery_rows(*MODEL)
    with pytest.raises(errors.PersonNotFound):
        facebank.people.update(person.id, display_name="gone")
    assert facebank.revision() == settled == 6
