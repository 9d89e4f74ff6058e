"""``/v1/rosters`` through the real app: admin writes, jobs reads, members must exist.

The session's tests share one facebank, so each test names its people and rosters with a fresh tag.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import JOBS_KEY, keyed_client
from tests.webapi.test_people_api import assert_error, create


@pytest.fixture
def tag() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def test_roster_lifecycle(client: Any, tag: str) -> None:
    ada, grace, alan = (create(client, f"{name} {tag}")["id"] for name in ("Ada", "Grace", "Alan"))

    created = client.post("/v1/rosters", json={"name": f"7B {tag}", "person_ids": [grace, ada, grace]})
    assert created.status_code == 201, created.get_json()
    roster = created.get_json()
    assert roster["person_ids"] == sorted([ada, grace]) and roster["member_count"] == 2
    assert created.headers["Location"] == f"/v1/rosters/{roster['id']}"
    assert client.get(created.headers["Location"]).get_json() == roster
    assert roster in client.get("/v1/rosters").get_json()["items"]

    patched = client.patch(f"/v1/rosters/{roster['id']}", json={"add": [alan], "remove": [ada]})
    assert patched.status_code == 200
    assert patched.get_json()["person_ids"] == sorted([grace, alan])
    renamed = client.patch(
        f"/v1/rosters/{roster['id']}", json={"name": f"7B spring {tag}", "person_ids": [ada]}
    )
    assert (renamed.get_json()["name"], renamed.get_json()["person_ids"]) == (f"7B spring {tag}", [ada])

    assert client.delete(f"/v1/rosters/{roster['id']}").status_code == 204
    assert_error(client.get(f"/v1/rosters/{roster['id']}"), 404, "roster_not_found")
    assert client.get(f"/v1/people/{ada}").status_code == 200, "deleting a roster keeps its people"


def test_roster_members_must_exist(client: Any, tag: str) -> None:
    ada = create(client, f"Ada {tag}")["id"]
    missing = 10**9

    assert_error(
        client.post("/v1/rosters", json={"name": tag, "person_ids": [ada, missing]}), 404, "person_not_found"
    )
    roster = client.post("/v1/rosters", json={"name": tag, "person_ids": [ada]}).get_json()
    assert_error(
        client.patch(f"/v1/rosters/{roster['id']}", json={"add": [missing]}), 404, "person_not_found"
    )
    assert client.get(f"/v1/rosters/{roster['id']}").get_json()["person_ids"] == [ada]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 5},
        {"name": "x", "person_ids": ["1"]},
        {"name": "x", "person_ids": [0]},
        {"name": "x", "extra": 1},
        {"name": "a\x00b"},
    ],
)
def test_malformed_roster_is_refused(client: Any, body: dict[str, Any]) -> None:
    assert_error(client.post("/v1/rosters", json=body), 400, "invalid_input")


def test_roster_names_are_unique_and_updates_cannot_null_them(client: Any, tag: str) -> None:
    roster = client.post("/v1/rosters", json={"name": tag}).get_json()

    assert_error(client.post("/v1/rosters", json={"name": tag}), 409, "duplicate_roster")
    assert_error(client.patch(f"/v1/rosters/{roster['id']}", json={"name": None}), 400, "invalid_input")
    assert_error(client.patch("/v1/rosters/999999999", json={"name": "x"}), 404, "roster_not_found")
    assert_error(client.get(f"/v1/rosters/{2**64}"), 404, "roster_not_found")


def test_jobs_key_reads_rosters_but_only_admin_changes_them(app: Any, client: Any, tag: str) -> None:
    roster = client.post("/v1/rosters", json={"name": tag}).get_json()
    jobs = keyed_client(app, JOBS_KEY)

    assert jobs.get(f"/v1/rosters/{roster['id']}").status_code == 200
    assert jobs.get("/v1/rosters").status_code == 200
    assert_error(jobs.post("/v1/rosters", json={"name": f"{tag}-2"}), 403, "forbidden")
    assert_error(jobs.patch(f"/v1/rosters/{roster['id']}", json={"name": "x"}), 403, "forbidden")
    assert_error(jobs.delete(f"/v1/rosters/{roster['id']}"), 403, "forbidden")
    assert_error(keyed_client(app, None).get("/v1/rosters"), 401, "unauthorized")
