"""``/v1/people`` and ``/v1/facebank`` through the real app, Redis and (for faces) a real worker.

Every test in the session shares one facebank database, so each test names its people with a
fresh tag and only counts what it created (stats are compared before and after).
"""

from __future__ import annotations

import base64
import io
import uuid
from typing import Any

import pytest

from tests.conftest import WorkerProcess
from tests.webapi.photos import no_face_photo, one_face_photo

pytestmark = pytest.mark.integration
MODEL = "dlib_resnet_v1"


@pytest.fixture
def tag() -> str:
    """A string no other test's people contain."""
    return f"t{uuid.uuid4().hex[:10]}"


def create(client: Any, display_name: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/people", json={"display_name": display_name, **fields})
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def enrol(client: Any, person_id: int, photo: bytes) -> Any:
    return client.post(f"/v1/people/{person_id}/faces", json={"image_b64": base64.b64encode(photo).decode()})


def stats(client: Any) -> dict[str, Any]:
    response = client.get("/v1/facebank/stats")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def embeddings(stats_body: dict[str, Any], model: str = MODEL) -> int:
    return sum(m["embeddings"] for m in stats_body["models"] if m["model_name"] == model)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]


# --- people ---
def test_create_person_answers_201_with_its_location(client: Any, tag: str) -> None:
    response = client.post(
        "/v1/people", json={"display_name": f"Ada {tag}", "external_id": tag, "metadata": {"class": "7B"}}
    )
    assert response.status_code == 201
    person = response.get_json()
    assert person["display_name"] == f"Ada {tag}"
    assert person["external_id"] == tag
    assert person["metadata"] == {"class": "7B"}
    assert person["face_count"] == 0
    assert response.headers["Location"] == f"/v1/people/{person['id']}"
    assert client.get(response.headers["Location"]).get_json() == person


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"display_name": ""},
        {"display_name": "   "},
        {"display_name": 5},
        {"display_name": "x" * 201},
        {"display_name": "Ada", "unknown": 1},
        {"display_name": "Ada", "metadata": [1, 2]},
        {"display_name": "Ada", "external_id": ""},
        {"display_name": "Ada", "external_id": "x" * 129},
    ],
)
def test_invalid_person_answers_400_invalid_input(client: Any, body: dict[str, Any]) -> None:
    assert_error(client.post("/v1/people", json=body), 400, "invalid_input")


def test_non_json_body_answers_400_invalid_input(client: Any) -> None:
    response = client.post("/v1/people", data="display_name=Ada", content_type="text/plain")
    assert_error(response, 400, "invalid_input")


def test_external_id_in_use_answers_409_duplicate_person(client: Any, tag: str) -> None:
    first = create(client, "First", external_id=tag)
    assert_error(
        client.post("/v1/people", json={"display_name": "Second", "external_id": tag}),
        409,
        "duplicate_person",
    )
    other = create(client, "Other", external_id=f"{tag}-other")
    assert_error(
        client.patch(f"/v1/people/{other['id']}", json={"external_id": tag}), 409, "duplicate_person"
    )
    assert client.get(f"/v1/people/{first['id']}").get_json()["display_name"] == "First"


def test_listing_pages_through_the_matches_in_enrolment_order(client: Any, tag: str) -> None:
    ids = [create(client, f"Pupil {tag} {n}")["id"] for n in range(3)]
    first = client.get("/v1/people", query_string={"q": tag, "limit": 2}).get_json()
    assert first["total"] == 3 and first["offset"] == 0 and first["limit"] == 2
    assert [p["id"] for p in first["items"]] == ids[:2]
    second = client.get("/v1/people", query_string={"q": tag, "limit": 2, "offset": 2}).get_json()
    assert [p["id"] for p in second["items"]] == ids[2:]
    assert second["total"] == 3
    beyond = client.get("/v1/people", query_string={"q": tag, "offset": 10}).get_json()
    assert beyond["items"] == [] and beyond["total"] == 3


@pytest.mark.parametrize(
    "query", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "ten"}, {"q": "x" * 201}]
)
def test_listing_refuses_out_of_range_paging(client: Any, query: dict[str, Any]) -> None:
    assert_error(client.get("/v1/people", query_string=query), 400, "invalid_input")


def test_search_matches_names_and_external_ids_case_insensitively(client: Any, tag: str) -> None:
    by_name = create(client, f"Grace_{tag}_Hopper")
    by_external = create(client, "Someone", external_id=f"ID-{tag}-42")
    found = client.get("/v1/people", query_string={"q": f"grace_{tag.upper()}"}).get_json()
    assert [p["id"] for p in found["items"]] == [by_name["id"]]
    found = client.get("/v1/people", query_string={"q": f"id-{tag}"}).get_json()
    assert [p["id"] for p in found["items"]] == [by_external["id"]]
    # "_" and "%" are literal characters, not LIKE wildcards.
    assert client.get("/v1/people", query_string={"q": f"grace%{tag}"}).get_json()["total"] == 0


def test_patch_changes_only_the_given_fields(client: Any, tag: str) -> None:
    person = create(client, "Before", external_id=tag, metadata={"a": 1, "b": 2})
    response = client.patch(f"/v1/people/{person['id']}", json={"display_name": "After"})
    assert response.status_code == 200
    changed = response.get_json()
    assert changed["display_name"] == "After"
    assert changed["external_id"] == tag and changed["metadata"] == {"a": 1, "b": 2}

    changed = client.patch(f"/v1/people/{person['id']}", json={"metadata": {"c": 3}}).get_json()
    assert changed["metadata"] == {"c": 3}, "metadata is replaced as a whole"
    changed = client.patch(f"/v1/people/{person['id']}", json={"external_id": None}).get_json()
    assert changed["external_id"] is None
    assert client.get(f"/v1/people/{person['id']}").get_json() == changed


@pytest.mark.parametrize(
    "body", [{"display_name": ""}, {"unknown": 1}, {"metadata": "text"}, {"display_name": None}]
)
def test_invalid_patch_answers_400_and_changes_nothing(client: Any, tag: str, body: dict[str, Any]) -> None:
    person = create(client, f"Stays {tag}")
    assert_error(client.patch(f"/v1/people/{person['id']}", json=body), 400, "invalid_input")
    assert client.get(f"/v1/people/{person['id']}").get_json()["display_name"] == f"Stays {tag}"


def test_unknown_person_answers_404_person_not_found(client: Any) -> None:
    missing = 2_000_000_000
    assert_error(client.get(f"/v1/people/{missing}"), 404, "person_not_found")
    assert_error(client.patch(f"/v1/people/{missing}", json={"display_name": "X"}), 404, "person_not_found")
    assert_error(client.delete(f"/v1/people/{missing}"), 404, "person_not_found")
    assert_error(client.get(f"/v1/people/{missing}/faces"), 404, "person_not_found")
    photo = base64.b64encode(no_face_photo()).decode()
    assert_error(
        client.post(f"/v1/people/{missing}/faces", json={"image_b64": photo}), 404, "person_not_found"
    )


def test_stats_count_new_people_and_bump_the_revision(client: Any, tag: str) -> None:
    before = stats(client)
    assert set(before) == {"revision", "people", "faces", "models"}
    create(client, f"Counted {tag}")
    after = stats(client)
    assert after["people"] == before["people"] + 1
    assert after["faces"] == before["faces"]
    assert after["revision"] > before["revision"]


# --- faces (need the worker) ---
def test_enrolled_face_is_listed_and_its_original_photo_downloads(
    client: Any, worker: WorkerProcess, tag: str
) -> None:
    person = create(client, f"Obama {tag}")
    photo = one_face_photo()
    before = stats(client)
    response = enrol(client, person["id"], photo)
    assert response.status_code == 201, response.get_json()
    face = response.get_json()
    assert face["person_id"] == person["id"]
    assert (face["width"], face["height"]) == (320, 240)
    assert face["content_type"] == "image/jpeg"
    x1, y1, x2, y2 = face["box"]
    assert x1 < x2 and y1 < y2 and 0 < (x1 + x2) / 2 < 320 and 0 < (y1 + y2) / 2 < 240
    assert len(face["landmarks"]) == 10

    image = client.get(face["image_url"])
    assert image.status_code == 200
    assert image.mimetype == "image/jpeg"
    assert image.data == photo

    listed = client.get(f"/v1/people/{person['id']}/faces").get_json()["items"]
    assert [f["id"] for f in listed] == [face["id"]]
    assert client.get(f"/v1/people/{person['id']}").get_json()["face_count"] == 1
    after = stats(client)
    assert after["faces"] == before["faces"] + 1
    assert embeddings(after) == embeddings(before) + 1
    model = next(m for m in after["models"] if m["model_name"] == MODEL)
    assert model["dim"] == 128


def test_face_can_be_uploaded_as_a_file(client: Any, worker: WorkerProcess, tag: str) -> None:
    person = create(client, f"Upload {tag}")
    photo = one_face_photo()
    response = client.post(
        f"/v1/people/{person['id']}/faces",
        data={"image": (io.BytesIO(photo), "me.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    assert client.get(response.get_json()["image_url"]).data == photo


def test_the_same_photo_twice_answers_409_duplicate_face(
    client: Any, worker: WorkerProcess, tag: str
) -> None:
    first, second = create(client, f"One {tag}"), create(client, f"Two {tag}")
    photo = one_face_photo()
    assert enrol(client, first["id"], photo).status_code == 201
    assert_error(enrol(client, first["id"], photo), 409, "duplicate_face")
    assert_error(enrol(client, second["id"], photo), 409, "duplicate_face")
    assert client.get(f"/v1/people/{second['id']}").get_json()["face_count"] == 0


def test_photo_without_a_face_answers_422_no_face(client: Any, worker: WorkerProcess, tag: str) -> None:
    person = create(client, f"Nobody {tag}")
    assert_error(enrol(client, person["id"], no_face_photo()), 422, "no_face")
    assert client.get(f"/v1/people/{person['id']}/faces").get_json()["items"] == []


def test_face_enrolment_validates_its_source(client: Any, tag: str) -> None:
    person = create(client, f"Source {tag}")
    url = f"/v1/people/{person['id']}/faces"
    assert_error(client.post(url, json={}), 400, "invalid_input")
    assert_error(
        client.post(url, json={"image_b64": "eA==", "url": "http://10.0.0.1/x.jpg"}), 400, "invalid_input"
    )
    assert_error(client.post(url, json={"url": "ftp://10.0.0.1/x.jpg"}), 400, "invalid_input")
    assert_error(client.post(url, json={"url": "rtspx://10.0.0.1/x"}), 400, "invalid_input")


def test_face_of_another_person_answers_404(client: Any, worker: WorkerProcess, tag: str) -> None:
    owner, other = create(client, f"Owner {tag}"), create(client, f"Other {tag}")
    face = enrol(client, owner["id"], one_face_photo()).get_json()
    assert_error(client.get(f"/v1/people/{other['id']}/faces/{face['id']}/image"), 404, "face_not_found")
    assert_error(client.delete(f"/v1/people/{other['id']}/faces/{face['id']}"), 404, "face_not_found")
    assert client.get(face["image_url"]).status_code == 200


def test_deleting_a_face_removes_its_photo_and_embedding(
    client: Any, worker: WorkerProcess, tag: str
) -> None:
    person = create(client, f"Keeps one {tag}")
    kept = enrol(client, person["id"], one_face_photo()).get_json()
    removed = enrol(client, person["id"], one_face_photo()).get_json()
    before = stats(client)
    assert client.delete(f"/v1/people/{person['id']}/faces/{removed['id']}").status_code == 204
    assert_error(client.get(removed["image_url"]), 404, "face_not_found")
    assert_error(client.delete(f"/v1/people/{person['id']}/faces/{removed['id']}"), 404, "face_not_found")
    listed = client.get(f"/v1/people/{person['id']}/faces").get_json()["items"]
    assert [f["id"] for f in listed] == [kept["id"]]
    after = stats(client)
    assert after["faces"] == before["faces"] - 1
    assert embeddings(after) == embeddings(before) - 1


def test_deleting_a_person_removes_their_photos_and_embeddings(
    client: Any, worker: WorkerProcess, tag: str
) -> None:
    person = create(client, f"Leaver {tag}", external_id=tag)
    faces = [enrol(client, person["id"], one_face_photo()).get_json() for _ in range(2)]
    before = stats(client)
    assert client.delete(f"/v1/people/{person['id']}").status_code == 204
    assert_error(client.get(f"/v1/people/{person['id']}"), 404, "person_not_found")
    assert_error(client.get(f"/v1/people/{person['id']}/faces"), 404, "person_not_found")
    for face in faces:
        assert_error(client.get(face["image_url"]), 404, "face_not_found")
    assert client.get("/v1/people", query_string={"q": tag}).get_json()["total"] == 0
    after = stats(client)
    assert after["people"] == before["people"] - 1
    assert after["faces"] == before["faces"] - 2
    assert embeddings(after) == embeddings(before) - 2
    # The external id is free again.
    assert create(client, "Newcomer", external_id=tag)["external_id"] == tag
