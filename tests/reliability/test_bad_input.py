"""Bad input at every endpoint: a JSON error with the right status and code, never a 500 or a stack trace.

Table-driven: each row is one request a careless or hostile client could send. No worker runs;
every refusal here happens in the API before a job is queued.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from tests.reliability.conftest import Deployment

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
MAX_UPLOAD = 100_000
URL = "http://127.0.0.1:9/shot.jpg"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
LANDMARKS = [[10, 10], [30, 10], [20, 20], [12, 30], [28, 30]]
GOOD_SEED_LANDMARK = "[10,30,20,12,28,10,10,20,30,30]"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw(text: str | bytes) -> dict[str, Any]:
    """A body sent as is (JSON that Python's json would never write: NaN, deep nesting, bad syntax)."""
    return {"data": text, "content_type": "application/json"}


# (id, method, path, request keyword arguments, status, code)
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # --- frame sources (detect, identify, attendance, enrolment) ---
    (
        "detect-not-json",
        "post",
        "/v1/jobs/detect",
        {"data": "url=x", "content_type": "text/plain"},
        400,
        "invalid_input",
    ),
    ("detect-broken-json", "post", "/v1/jobs/detect", raw('{"url": '), 400, "invalid_input"),
    ("detect-json-array", "post", "/v1/jobs/detect", {"json": [URL]}, 400, "invalid_input"),
    ("detect-deeply-nested", "post", "/v1/jobs/detect", raw("[" * 100_000), 400, "invalid_input"),
    ("detect-no-source", "post", "/v1/jobs/detect", {"json": {}}, 400, "invalid_input"),
    (
        "detect-two-sources",
        "post",
        "/v1/jobs/detect",
        {"json": {"url": URL, "image_b64": b64(JPEG)}},
        400,
        "invalid_input",
    ),
    (
        "detect-unknown-field",
        "post",
        "/v1/jobs/detect",
        {"json": {"url": URL, "shell": "rm -rf /"}},
        400,
        "invalid_input",
    ),
    ("detect-url-number", "post", "/v1/jobs/detect", {"json": {"url": 5}}, 400, "invalid_input"),
    (
        "detect-url-file-scheme",
        "post",
        "/v1/jobs/detect",
        {"json": {"url": "file:///etc/passwd"}},
        400,
        "invalid_input",
    ),
    (
        "detect-url-too-long",
        "post",
        "/v1/jobs/detect",
        {"json": {"url": "http://x/" + "a" * 2100}},
        400,
        "invalid_input",
    ),
    (
        "detect-not-base64",
        "post",
        "/v1/jobs/detect",
        {"json": {"image_b64": "not base64!"}},
        400,
        "invalid_input",
    ),
    ("detect-empty-upload", "post", "/v1/jobs/detect", {"json": {"image_b64": ""}}, 422, "not_an_image"),
    (
        "detect-gif-upload",
        "post",
        "/v1/jobs/detect",
        {"json": {"image_b64": b64(b"GIF89a" + b"\x00" * 32)}},
        422,
        "not_an_image",
    ),
    (
        "detect-text-upload",
        "post",
        "/v1/jobs/detect",
        {"json": {"image_b64": b64(b"<html>hello</html>")}},
        422,
        "not_an_image",
    ),
    (
        "detect-upload-over-limit",
        "post",
        "/v1/jobs/detect",
        {"json": {"image_b64": b64(JPEG + b"\x00" * (MAX_UPLOAD + 1))}},
        413,
        "payload_too_large",
    ),
    (
        "detect-body-over-limit",
        "post",
        "/v1/jobs/detect",
        raw(b'{"url": "' + b"a" * (3 * MAX_UPLOAD) + b'"}'),
        413,
        "payload_too_large",
    ),
    (
        "detect-multipart-not-an-image",
        "post",
        "/v1/jobs/detect",
        {"data": {"image": (io.BytesIO(b"hello"), "f.jpg")}, "content_type": "multipart/form-data"},
        422,
        "not_an_image",
    ),
    # --- identify: the face ---
    ("identify-no-face", "post", "/v1/jobs/identify", {"json": {"url": URL}}, 400, "invalid_input"),
    (
        "identify-4-landmarks",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "landmarks": LANDMARKS[:4]}},
        400,
        "invalid_input",
    ),
    (
        "identify-3d-point",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "landmarks": [[1, 2, 3], *LANDMARKS[1:]]}},
        400,
        "invalid_input",
    ),
    (
        "identify-nan-landmark",
        "post",
        "/v1/jobs/identify",
        raw(f'{{"url": "{URL}", "landmarks": [[NaN, 1], [2, 1], [3, 1], [4, 1], [5, 1]]}}'),
        400,
        "invalid_input",
    ),
    (
        "identify-infinite-box",
        "post",
        "/v1/jobs/identify",
        raw(f'{{"url": "{URL}", "box": [0, 0, Infinity, 5]}}'),
        400,
        "invalid_input",
    ),
    (
        "identify-string-coordinate",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "landmarks": [["1", 2], *LANDMARKS[1:]]}},
        400,
        "invalid_input",
    ),
    (
        "identify-huge-coordinate",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "landmarks": [[1e300, 2], *LANDMARKS[1:]]}},
        400,
        "invalid_input",
    ),
    (
        "identify-reversed-box",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "box": [50, 50, 10, 10]}},
        400,
        "invalid_input",
    ),
    (
        "identify-3-value-box",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "box": [0, 0, 5]}},
        400,
        "invalid_input",
    ),
    (
        "identify-top-k-0",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "box": [0, 0, 5, 5], "top_k": 0}},
        400,
        "invalid_input",
    ),
    (
        "identify-top-k-11",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "box": [0, 0, 5, 5], "top_k": 11}},
        400,
        "invalid_input",
    ),
    (
        "identify-top-k-string",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "box": [0, 0, 5, 5], "top_k": "3"}},
        400,
        "invalid_input",
    ),
    (
        "identify-top-k-bool",
        "post",
        "/v1/jobs/identify",
        {"json": {"url": URL, "box": [0, 0, 5, 5], "top_k": True}},
        400,
        "invalid_input",
    ),
    # --- attendance: the roster ---
    (
        "attendance-roster-string",
        "post",
        "/v1/jobs/attendance",
        {"json": {"url": URL, "roster": "1,2"}},
        400,
        "invalid_input",
    ),
    (
        "attendance-roster-zero",
        "post",
        "/v1/jobs/attendance",
        {"json": {"url": URL, "roster": [0]}},
        400,
        "invalid_input",
    ),
    (
        "attendance-roster-past-32-bits",
        "post",
        "/v1/jobs/attendance",
        {"json": {"url": URL, "roster": [2**40]}},
        400,
        "invalid_input",
    ),
    (
        "attendance-roster-too-long",
        "post",
        "/v1/jobs/attendance",
        {"json": {"url": URL, "roster": list(range(1, 10_002))}},
        400,
        "invalid_input",
    ),
    # --- job ids ---
    ("job-id-too-long", "get", "/v1/jobs/" + "a" * 65, {}, 400, "invalid_input"),
    ("job-id-odd-characters", "get", "/v1/jobs/abc$def", {}, 400, "invalid_input"),
    ("job-id-non-ascii", "delete", "/v1/jobs/abcé", {}, 400, "invalid_input"),
    ("job-unknown", "get", "/v1/jobs/6d3c9a7e-0000-4000-8000-000000000000", {}, 404, "job_not_found"),
    # --- people ---
    ("person-empty", "post", "/v1/people", {"json": {}}, 400, "invalid_input"),
    ("person-blank-name", "post", "/v1/people", {"json": {"display_name": "   "}}, 400, "invalid_input"),
    (
        "person-name-too-long",
        "post",
        "/v1/people",
        {"json": {"display_name": "x" * 201}},
        400,
        "invalid_input",
    ),
    ("person-name-number", "post", "/v1/people", {"json": {"display_name": 5}}, 400, "invalid_input"),
    ("person-name-nul", "post", "/v1/people", {"json": {"display_name": "a\x00b"}}, 400, "invalid_input"),
    (
        "person-external-id-too-long",
        "post",
        "/v1/people",
        {"json": {"display_name": "a", "external_id": "e" * 129}},
        400,
        "invalid_input",
    ),
    (
        "person-metadata-list",
        "post",
        "/v1/people",
        {"json": {"display_name": "a", "metadata": [1]}},
        400,
        "invalid_input",
    ),
    (
        "person-metadata-nan",
        "post",
        "/v1/people",
        raw('{"display_name": "a", "metadata": {"x": NaN}}'),
        400,
        "invalid_input",
    ),
    (
        "person-metadata-nul",
        "post",
        "/v1/people",
        {"json": {"display_name": "a", "metadata": {"k": ["\x00"]}}},
        400,
        "invalid_input",
    ),
    (
        "person-metadata-too-large",
        "post",
        "/v1/people",
        {"json": {"display_name": "a", "metadata": {"k": "x" * 20_000}}},
        400,
        "invalid_input",
    ),
    (
        "person-update-null-name",
        "patch",
        "/v1/people/1",
        {"json": {"display_name": None}},
        400,
        "invalid_input",
    ),
    ("person-id-past-32-bits", "get", "/v1/people/99999999999999999999", {}, 404, "person_not_found"),
    ("person-delete-past-32-bits", "delete", "/v1/people/4294967296", {}, 404, "person_not_found"),
    ("person-unknown", "get", "/v1/people/123456", {}, 404, "person_not_found"),
    (
        "face-of-unknown-person",
        "post",
        "/v1/people/123456/faces",
        {"json": {"image_b64": b64(JPEG)}},
        404,
        "person_not_found",
    ),
    (
        "face-not-an-image",
        "post",
        "/v1/people/123456/faces",
        {"json": {"image_b64": b64(b"GIF89a")}},
        422,
        "not_an_image",
    ),
    # --- pagination ---
    ("page-limit-0", "get", "/v1/people?limit=0", {}, 400, "invalid_input"),
    ("page-limit-501", "get", "/v1/people?limit=501", {}, 400, "invalid_input"),
    ("page-limit-word", "get", "/v1/people?limit=abc", {}, 400, "invalid_input"),
    ("page-offset-negative", "get", "/v1/people?offset=-1", {}, 400, "invalid_input"),
    ("page-offset-too-far", "get", "/v1/people?offset=10000001", {}, 400, "invalid_input"),
    ("page-query-nul", "get", "/v1/people?q=a%00b", {}, 400, "invalid_input"),
    # --- the seed's routes ---
    ("seed-no-ip", "get", "/modelfr", {}, 400, "invalid_input"),
    ("seed-ip-not-http", "get", "/modelat?ip=ftp://camera/shot.jpg", {}, 400, "invalid_input"),
    ("seed-9-landmarks", "get", f"/modelin?ip={URL}&landmark=[1,2,3,4,5,6,7,8,9]", {}, 400, "invalid_input"),
    ("seed-landmark-not-json", "get", f"/modelin?ip={URL}&landmark=[1,2", {}, 400, "invalid_input"),
    (
        "seed-landmark-nan",
        "get",
        f"/modelin?ip={URL}&landmark=[NaN,1,2,3,4,5,6,7,8,9]",
        {},
        400,
        "invalid_input",
    ),
    (
        "seed-landmark-strings",
        "get",
        f'/modelin?ip={URL}&landmark=["1",2,3,4,5,6,7,8,9,10]',
        {},
        400,
        "invalid_input",
    ),
    (
        "seed-landmark-bools",
        "get",
        f"/modelin?ip={URL}&landmark=[true,2,3,4,5,6,7,8,9,10]",
        {},
        400,
        "invalid_input",
    ),
    ("seed-landmark-nested", "get", f"/modelin?ip={URL}&landmark={'[' * 900}", {}, 400, "invalid_input"),
    ("seed-no-landmark", "get", f"/modelin?ip={URL}", {}, 400, "invalid_input"),
    # --- routing ---
    ("wrong-method", "put", "/v1/jobs/detect", {}, 405, "method_not_allowed"),
    ("no-such-path", "get", "/v1/nothing-here", {}, 404, "not_found"),
]


@pytest.fixture(scope="module")
def api(deploy: Any) -> Deployment:
    deployment: Deployment = deploy(
        "inputs", ROLLCALL_MAX_UPLOAD_BYTES=str(MAX_UPLOAD), ROLLCALL_LEGACY_WAIT_S="0.5"
    )
    return deployment


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gets_a_json_error_with_its_status_and_code(
    api: Deployment, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    response = getattr(api.client(), method)(path, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.is_json, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]


def test_the_table_covers_every_job_and_people_route(report: dict[str, Any]) -> None:
    routes = {(method, path.split("?")[0].rstrip("/")) for _, method, path, *_ in CASES}
    assert {
        ("post", "/v1/jobs/detect"),
        ("post", "/v1/jobs/identify"),
        ("post", "/v1/jobs/attendance"),
        ("post", "/v1/people"),
        ("get", "/v1/people"),
        ("get", "/modelfr"),
        ("get", "/modelin"),
        ("get", "/modelat"),
    } <= routes
    report["bad_input"] = {"cases": len(CASES), "statuses": sorted({case[4] for case in CASES})}
