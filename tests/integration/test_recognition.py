"""Recognition through the real system: enrol the shared facebank over the API, then name the probe photos.

Expected people per probe come from ``datasets/MANIFEST.md`` (dlib's own pipeline gets all 8 right).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import System, wait_for_job
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration

EXPECTED = {
    "alex_lacamoire1.jpg": {"alex_lacamoire"},
    "johnsnow_test1.jpg": {"kit_harington"},
    "kit_with_rose.jpg": {"kit_harington", "rose_leslie"},
    "obama1.jpg": {"obama"},
    "obama3.jpg": {"obama"},
    "obama_and_biden.jpg": {"biden", "obama"},
    "two_people.jpg": {"biden", "obama"},
    "lin-manuel-miranda.png": set(),
}


def enrol_folder(client: Any, folder: Path) -> dict[str, Any]:
    """Create the person named by the folder and enrol each photo through the API; returns the person."""
    response = client.post("/v1/people", json={"display_name": folder.name, "external_id": folder.name})
    assert response.status_code == 201, response.get_json()
    person = response.get_json()
    for photo in sorted(folder.iterdir()):
        data = base64.b64encode(photo.read_bytes()).decode()
        added = client.post(f"/v1/people/{person['id']}/faces", json={"image_b64": data})
        assert added.status_code == 201, (photo, added.get_json())
    return person


@pytest.fixture(scope="module")
def enrolled(system_factory: Any) -> tuple[System, dict[str, dict[str, Any]]]:
    system = system_factory("recognition")
    system.worker()
    client = system.client()
    people = {
        folder.name: enrol_folder(client, folder)
        for folder in sorted((shared_dir() / "datasets/facebank").iterdir())
    }
    return system, people


def attendance(client: Any, camera: str, probe: str, **body: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/jobs/attendance", json={"url": f"{camera}/datasets/facebank_probe/{probe}", **body}
    )
    assert response.status_code == 202
    job = wait_for_job(client, response.get_json()["job_id"])
    assert job["state"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


@pytest.mark.parametrize("probe", sorted(EXPECTED))
def test_attendance_names_exactly_the_enrolled_people_in_each_probe(
    enrolled: tuple[System, Any], camera: str, probe: str
) -> None:
    system, _ = enrolled
    result = attendance(system.client(), camera, probe)
    names = [entry["person"]["display_name"] for entry in result["present"]]
    assert set(names) == EXPECTED[probe]
    assert len(names) == len(set(names)), "a person was named twice in one frame"
    assert set(result["timings_ms"]) >= {"fetch", "decode", "detect", "embed", "match"}


def test_seed_modelat_lists_names(enrolled: tuple[System, Any], camera: str) -> None:
    system, _ = enrolled
    response = system.client().get(
        "/modelat", query_string={"ip": f"{camera}/datasets/facebank_probe/two_people.jpg"}
    )
    assert response.status_code == 200
    assert sorted(response.get_json()["id"]) == ["biden", "obama"]


def test_seed_modelin_names_the_face_at_the_landmarks(enrolled: tuple[System, Any], camera: str) -> None:
    system, _ = enrolled
    client = system.client()
    url = f"{camera}/datasets/facebank_probe/kit_with_rose.jpg"
    boxes = client.get("/modelfr", query_string={"ip": url}).get_json()["box"]
    names = []
    for box in boxes:
        response = client.get("/modelin", query_string={"ip": url, "landmark": str(box["landmarks"])})
        assert response.status_code == 200
        names.append(response.get_json()["id"][0])
    assert {"kit_harington", "rose_leslie"} <= set(names)
    unknown = client.get(
        "/modelin",
        query_string={
            "ip": f"{camera}/datasets/facebank_probe/lin-manuel-miranda.png",
            "landmark": str(
                client.get(
                    "/modelfr",
                    query_string={"ip": f"{camera}/datasets/facebank_probe/lin-manuel-miranda.png"},
                ).get_json()["box"][0]["landmarks"]
            ),
        },
    )
    assert unknown.get_json() == {"id": ["Unknown"]}


def test_identify_by_box_gives_person_score_and_candidates(enrolled: tuple[System, Any], camera: str) -> None:
    system, people = enrolled
    client = system.client()
    url = f"{camera}/datasets/facebank_probe/obama1.jpg"
    detect = wait_for_job(client, client.post("/v1/jobs/detect", json={"url": url}).get_json()["job_id"])
    best = max(detect["result"]["faces"], key=lambda face: face["prob"])
    response = client.post("/v1/jobs/identify", json={"url": url, "box": best["box"], "top_k": 2})
    job = wait_for_job(client, response.get_json()["job_id"])
    result = job["result"]
    assert result["person"]["id"] == people["obama"]["id"]
    assert result["score"] >= result["threshold"]
    assert len(result["candidates"]) == 2
    assert result["candidates"][0]["score"] >= result["candidates"][1]["score"]


def test_identify_box_without_a_face_fails_with_no_face(enrolled: tuple[System, Any], camera: str) -> None:
    system, _ = enrolled
    client = system.client()
    response = client.post(
        "/v1/jobs/identify", json={"url": f"{camera}/datasets/facebank_probe/obama1.jpg", "box": [0, 0, 5, 5]}
    )
    job = wait_for_job(client, response.get_json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"]["code"] == "no_face"


def test_roster_restricts_attendance_and_lists_absentees(enrolled: tuple[System, Any], camera: str) -> None:
    system, people = enrolled
    roster = [people["biden"]["id"], people["alex_lacamoire"]["id"]]
    result = attendance(system.client(), camera, "two_people.jpg", roster=roster)
    assert [entry["person"]["display_name"] for entry in result["present"]] == ["biden"]
    assert [person["display_name"] for person in result["absent"]] == ["alex_lacamoire"]
    # Obama is in the frame but not on the roster: his face is unknown here, never misnamed.
    assert len(result["unknown_faces"]) >= 1


def test_enrolment_refuses_photos_without_exactly_one_face(enrolled: tuple[System, Any]) -> None:
    system, people = enrolled
    client = system.client()
    person = people["obama"]["id"]
    for photo, code in (
        ("oracles/mtcnn_facenet_pytorch/images/no_face_synthetic.png", "no_face"),
        ("datasets/facebank_probe/two_people.jpg", "multiple_faces"),
        ("datasets/facebank/obama/obama.jpg", "duplicate_face"),
    ):
        data = base64.b64encode((shared_dir() / photo).read_bytes()).decode()
        response = client.post(f"/v1/people/{person}/faces", json={"image_b64": data})
        assert response.get_json()["error"]["code"] == code, photo
        assert response.status_code in (409, 422)


def test_delete_and_re_enrol_is_seen_by_the_next_job(enrolled: tuple[System, Any], camera: str) -> None:
    system, people = enrolled
    client = system.client()
    biden = people["biden"]
    assert "biden" in {
        e["person"]["display_name"] for e in attendance(client, camera, "two_people.jpg")["present"]
    }
    assert client.delete(f"/v1/people/{biden['id']}").status_code == 204
    after_delete = attendance(client, camera, "two_people.jpg")
    assert {e["person"]["display_name"] for e in after_delete["present"]} == {"obama"}
    people["biden"] = enrol_folder(client, shared_dir() / "datasets/facebank/biden")
    after_enrol = attendance(client, camera, "two_people.jpg")
    assert {e["person"]["display_name"] for e in after_enrol["present"]} == {"biden", "obama"}
