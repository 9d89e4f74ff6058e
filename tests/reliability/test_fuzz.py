"""Fuzzing the API from its own OpenAPI document (schemathesis): no 500, every answer as the document says.

Every operation gets schema-valid requests (positive) and schema-breaking ones (negative), sent
to the real WSGI app with an admin key. The facebank is PostgreSQL, whose limits (no NUL in
text, 64-bit ids) are stricter than SQLite's. No worker runs: jobs are queued, and routes that
wait for one answer ``job_timeout`` (504) after a fifth of a second, as documented.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error, positive_data_acceptance
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from tests.conftest import ADMIN_KEY
from tests.postgres import temporary_database
from tests.reliability.conftest import Deployment

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
AUTH = {"X-API-Key": ADMIN_KEY}
EXAMPLES = int(os.environ.get("ROLLCALL_RELIABILITY_FUZZ_EXAMPLES", "25"))
# Upstream failures the API documents as 5xx: what a client sees when a camera, Redis or a worker is away.
DOCUMENTED_5XX = {
    "camera_unreachable",
    "camera_protocol_error",
    "camera_auth_failed",
    "camera_tls_failed",
    "broker_unavailable",
    "database_unavailable",
    "weights_missing",
    "camera_timeout",
    "job_timeout",
}


@pytest.fixture(scope="module")
def fuzzed(deploy: Any) -> Iterator[Deployment]:
    with temporary_database() as url:
        deployment: Deployment = deploy(
            "fuzz",
            ROLLCALL_DATABASE_URL=url,
            ROLLCALL_LEGACY_WAIT_S="0.05",
            ROLLCALL_CALLBACK_SECRET="fuzz-callback-secret-0123456789",
        )
        yield deployment
        deployment.app.extensions["rollcall.facebank"].close()


def no_internal_error(response: Any) -> None:
    """A 5xx must be a documented upstream failure (or /readyz saying not ready), never ``internal_error``."""
    if response.status_code < 500:
        return
    body = response.json()
    assert response.status_code != 500 and body.get("error", {}).get("code", "") in DOCUMENTED_5XX | {""}, (
        f"{response.status_code}: {body}"
    )


def beyond_json_schema(case: Any) -> bool:
    """Whether the request may break a rule JSON Schema cannot state, so a 400/422 is right, not a lie.

    Such rules: an upload must be an image in base64; a box's corners are ordered; the seed's
    landmark is JSON text inside a query string; metadata holds no NUL anywhere; a callback URL
    must pass the camera allowlist; a threshold comes from a finished calibration job or with its
    model; an attendance session's plan (duration or end, interval or burst) starts near now; a
    camera's TLS trust fits its URL's scheme, its CA is a PEM certificate, its name is not taken; a
    legacy route takes its ``ip`` or its ``camera`` (query parameters cannot say "one of").
    """
    body = case.body if isinstance(case.body, dict) else {}
    return (
        "image_b64" in body
        or "callback_url" in body
        or (case.path == "/v1/jobs/identify" and "box" in body)
        or case.path in ("/modelin", "/v1/facebank/threshold")
        or (case.path == "/v1/attendance-sessions" and case.method == "POST")
        or (case.path.startswith("/v1/cameras") and case.method in ("POST", "PATCH"))
        or (case.path in ("/modelfr", "/modelat") and len({"ip", "camera"} & set(case.query or {})) != 1)
        or "\\u0000" in json.dumps(body.get("metadata"))
    )


def test_the_api_survives_fuzzing_and_answers_as_documented(
    fuzzed: Deployment, report: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed.app)
    # The admin key is sent with every case (the auth checks still probe without it and with a wrong one).
    # Unknown query parameters are ignored on purpose: the seed routes' old frontends add cache busters.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    statuses: Counter[int] = Counter()
    cases = 0
    failures: list[str] = []

    def check(case: Any) -> None:
        nonlocal cases
        cases += 1
        response = case.call(headers=AUTH)
        statuses[response.status_code] += 1
        no_internal_error(response)
        excluded = [not_a_server_error]
        if beyond_json_schema(case):
            excluded.append(positive_data_acceptance)
        case.validate_response(response, excluded_checks=excluded, headers=AUTH)

    # A camera's event stream answers an endless body by design (Server-Sent Events while the client stays),
    # which schemathesis would read to its end; tests/live/test_event_stream_api.py covers its answers.
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if not operation.path.endswith("/events")
    ]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # A valid seed request waits out its job's timeout (about a second): fewer of those.
            waits = mode is GenerationMode.POSITIVE and operation.path in ("/modelfr", "/modelin", "/modelat")
            run = hypothesis.settings(
                max_examples=max(2, EXAMPLES // 5) if waits else EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )(hypothesis.given(case=operation.as_strategy(generation_mode=mode))(check))
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be made"
                # An operation without parameters or body has no invalid request to make.
            except (
                Exception,
                FailureGroup,
            ) as failure:  # collected, so one run reports every broken operation
                failures.append(f"{operation.label} [{mode.value}]: {failure}")

    assert not failures, "\n".join(dict.fromkeys(failures))
    report["fuzz"] = {
        "tool": f"schemathesis {schemathesis.__version__}",
        "operations": len(operations),
        "cases": cases,
        "server_errors_500": statuses.get(500, 0),
        "statuses": dict(sorted(statuses.items())),
    }
