"""Concurrent enrolments through the API, run by two workers at once: no lost and no duplicated rows."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import System
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration


def photo_b64(person: str, name: str) -> str:
    return base64.b64encode((shared_dir() / "datasets/facebank" / person / name).read_bytes()).decode()


def create(client: Any, name: str) -> int:
    response = client.post("/v1/people", json={"display_name": name, "external_id": f"concurrent-{name}"})
    assert response.status_code == 201
    person_id: int = response.get_json()["id"]
    return person_id


def enrol_all(system: System, requests: list[tuple[int, str]]) -> list[Any]:
    """POST every (person id, base64 photo) at the same time, each from its own client."""

    def post(request: tuple[int, str]) -> Any:
        person_id, data = request
        return system.client().post(f"/v1/people/{person_id}/faces", json={"image_b64": data})

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(post, requests))


def test_concurrent_enrolments_lose_nothing_and_store_one_copy_of_an_image(system_factory: Any) -> None:
    system = system_factory("concurrent-enrolment")
    first, second = system.worker("a", wait=False), system.worker("b", wait=False)
    first.wait_ready()
    second.wait_ready()
    client = system.client()
    obama, biden = create(client, "obama"), create(client, "biden")
    before = client.get("/v1/facebank/stats").get_json()

    different = enrol_all(
        system, [(obama, photo_b64("obama", "obama.jpg")), (biden, photo_b64("biden", "biden.jpg"))]
    )
    assert [r.status_code for r in different] == [201, 201]

    # Two people without faces yet, so the quality gate's outlier check cannot refuse either: the
    # database alone decides which of the two racing enrolments of one image wins.
    first_twin, second_twin = create(client, "twin-1"), create(client, "twin-2")
    same_image = photo_b64("obama", "obama2.jpg")
    racing = enrol_all(system, [(first_twin, same_image), (second_twin, same_image)])
    assert sorted(r.status_code for r in racing) == [201, 409]
    refused = next(r for r in racing if r.status_code == 409)
    assert refused.get_json()["error"]["code"] == "duplicate_face"

    after = client.get("/v1/facebank/stats").get_json()
    assert after["faces"] == before["faces"] + 3
    # One bump per stored face and per created person; none for the refused enrolment.
    assert after["revision"] == before["revision"] + 3 + 2
    people = (obama, biden, first_twin, second_twin)
    faces = {pid: client.get(f"/v1/people/{pid}/faces").get_json()["items"] for pid in people}
    assert sum(len(items) for items in faces.values()) == 3
