"""Issue 26's smaller items through the real app and Redis (no worker: each is decided at submission).

Base64 as tools write it, one multipart image, uploads stored once by reference, names that look like
what they are, and messages that do not list 10,000 ids.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from typing import Any

import jsonschema_rs
import pytest
import redis

from contract.uploads import Uploads
from errors import UploadExpired
from tests.conftest import System
from tests.shared_data import shared_dir
from tests.webapi.test_people_api import assert_error, create
from webapi.names import BIDI_CONTROLS, INVISIBLE, normalised_name
from webapi.validation import VISIBLE_TEXT

PHOTO = "oracles/mtcnn_facenet_pytorch/images/two_people.jpg"


@pytest.fixture(scope="module")
def idle(system_factory: Any) -> System:
    """A system whose jobs stay queued: no worker consumes its queues."""
    system: System = system_factory("input-edges")
    return system


def _queued_messages(system: System) -> list[bytes]:
    broker = redis.Redis.from_url(system.env["ROLLCALL_BROKER_URL"])
    return list(broker.lrange(system.app.extensions["rollcall.settings"].model_queue, 0, -1))


def _stored_upload(system: System, job_id: str) -> bytes | None:
    stored: bytes | None = system.app.extensions["rollcall.jobs"].redis.get(f"rollcall:upload:{job_id}")
    return stored


def test_base64_wrapped_in_lines_or_as_a_data_url_is_accepted_as_the_same_image(idle: System) -> None:
    photo = (shared_dir() / PHOTO).read_bytes()
    client = idle.client()
    for sent in (
        base64.encodebytes(photo).decode(),  # what `base64` writes: lines of 76 characters
        "data:image/jpeg;base64," + base64.b64encode(photo).decode(),  # what a browser's FileReader gives
    ):
        accepted = client.post("/v1/jobs/detect", json={"image_b64": sent})
        assert accepted.status_code == 202, accepted.get_json()
        assert _stored_upload(idle, accepted.get_json()["job_id"]) == photo
    refused = client.post("/v1/jobs/detect", json={"image_b64": "data:text/plain,hello"})
    assert_error(refused, 400, "invalid_input")
    assert "data:image/jpeg;base64," in refused.get_json()["error"]["message"]
    garbage = client.post("/v1/jobs/detect", json={"image_b64": "not base64 at all!"})
    assert_error(garbage, 400, "invalid_input")
    assert "standard base64" in garbage.get_json()["error"]["message"], "the message says what to send"


def test_several_multipart_image_fields_are_refused(idle: System) -> None:
    photo = (shared_dir() / PHOTO).read_bytes()
    response = idle.client().post(
        "/v1/jobs/detect",
        data={"image": [(io.BytesIO(photo), "a.jpg"), (io.BytesIO(photo), "b.jpg")]},
        content_type="multipart/form-data",
    )
    assert_error(response, 400, "invalid_input")
    assert "one 'image' field" in response.get_json()["error"]["message"]


def test_an_upload_is_stored_once_and_the_job_message_names_it(idle: System) -> None:
    """Issue 26: a 19.9 MB upload became a 26.5 MB job message (base64 inside the message)."""
    photo = (shared_dir() / PHOTO).read_bytes() * 40  # 2-3 MB: a JPEG with trailing bytes still decodes
    before = len(_queued_messages(idle))
    response = idle.client().post(
        "/v1/jobs/detect", data={"image": (io.BytesIO(photo), "big.jpg")}, content_type="multipart/form-data"
    )
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    messages = _queued_messages(idle)
    assert len(messages) == before + 1
    message = messages[0]  # LPUSH: the newest first
    assert len(message) < 4096, f"the job message holds {len(message)} bytes for a {len(photo)}-byte upload"
    body = json.loads(base64.b64decode(json.loads(message)["body"]))
    assert body[1]["source"] == {"upload": job_id}
    assert _stored_upload(idle, job_id) == photo, "the bytes are stored once, as sent"


def test_an_upload_that_expired_before_a_worker_took_its_job_is_a_clear_error(idle: System) -> None:
    uploads = Uploads(idle.app.extensions["rollcall.jobs"].redis, expires_s=60)
    uploads.put("job-that-waited", b"\xff\xd8\xff")
    assert uploads.read("job-that-waited") == b"\xff\xd8\xff"
    uploads.delete("job-that-waited")  # what its expiry does
    with pytest.raises(UploadExpired) as expired:
        uploads.read("job-that-waited")
    assert expired.value.code == "upload_expired" and expired.value.status == 410
    assert "send the image again" in expired.value.message


def test_names_are_stored_in_nfkc_and_invisible_characters_are_refused(client: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    full_width = create(client, f"ｏｂａｍａ {tag}")
    assert full_width["display_name"] == f"obama {tag}", "one spelling per look"
    for invisible in ("\u200d", "\u200b", "\ufeff", "\u2060", "\u00ad", "\u3164"):
        body = {"display_name": f"o{invisible}bama {tag}"}
        refused = client.post("/v1/people", json=body)
        assert_error(refused, 400, "invalid_input")
        assert "invisible" in refused.get_json()["error"]["message"]
    person = full_width["id"]
    assert_error(client.patch(f"/v1/people/{person}", json={"external_id": "p\u200d1"}), 400, "invalid_input")
    roster = client.post("/v1/rosters", json={"name": f"class\u200b{tag}", "person_ids": [person]})
    assert_error(roster, 400, "invalid_input")


def test_a_name_mixing_look_alike_scripts_is_flagged_on_create(client: Any) -> None:
    """Issue 26: "оbama" (Cyrillic о) beside "obama" looked identical in lists."""
    tag = uuid.uuid4().hex[:6]
    latin = client.post("/v1/people", json={"display_name": f"obama {tag}"})
    assert latin.status_code == 201 and "warnings" not in latin.get_json()
    mixed = client.post("/v1/people", json={"display_name": f"\u043ebama {tag}"})
    assert mixed.status_code == 201
    (warning,) = mixed.get_json()["warnings"]
    assert warning["code"] == "mixed_script" and "cyrillic and latin" in warning["message"]
    renamed = client.patch(f"/v1/people/{latin.get_json()['id']}", json={"display_name": f"\u0417eus {tag}"})
    assert [w["code"] for w in renamed.get_json()["warnings"]] == ["mixed_script"]
    for fine in ("山田はなこ", "Иван Smith", "José"):  # one writing system per word
        assert "warnings" not in client.post("/v1/people", json={"display_name": f"{fine} {tag}"}).get_json()


def test_a_long_list_of_missing_ids_is_cut_short_in_the_message(client: Any) -> None:
    """Issue 26: a roster of 10,000 unknown ids answered a 404 whose message listed all of them (80 KB)."""
    unknown = list(range(1_000_000_000, 1_000_010_000))
    job = client.post("/v1/jobs/attendance", json={"url": "http://127.0.0.1:9/x.jpg", "roster": unknown})
    assert_error(job, 404, "person_not_found")
    message = job.get_json()["error"]["message"]
    assert len(message) < 400 and message.endswith("and 9980 more"), message
    assert "1000000000, 1000000001" in message, "the first ids are still named"
    roster = client.post(
        "/v1/rosters", json={"name": f"ghosts {uuid.uuid4().hex[:6]}", "person_ids": unknown}
    )
    assert_error(roster, 404, "person_not_found")
    assert roster.get_json()["error"]["message"].endswith("and 9980 more")


def test_the_openapi_pattern_refuses_exactly_what_the_api_refuses() -> None:
    """One table (webapi.names.INVISIBLE) makes both; a validator that cannot compile a pattern ignores it."""
    validator = jsonschema_rs.Draft202012Validator(VISIBLE_TEXT)  # what schemathesis checks answers with
    for low, high in INVISIBLE:
        for point in {low, high}:
            text = f"a{chr(point)}b"
            assert not validator.is_valid(text), f"U+{point:04X} passes the documented pattern"
            if chr(point) != "\x00" and chr(point) not in BIDI_CONTROLS:  # refused with messages of their own
                with pytest.raises(ValueError, match="invisible"):
                    normalised_name(text)
    for shown in ("obama", "Иван Smith", "山田はなこ", "x\U000d8eaf", "José"):
        assert validator.is_valid(shown) and normalised_name(shown) == shown
