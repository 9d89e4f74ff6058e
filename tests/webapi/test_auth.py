"""API keys and roles on the real app (no worker needed: refusals happen before any job is queued)."""

from __future__ import annotations

import concurrent.futures
import secrets
from typing import Any

import pytest
from pydantic import ValidationError

from settings import Settings
from tests.conftest import ADMIN_KEY, JOBS_KEY, keyed_client, migrated_app
from webapi.auth import role_of


def test_requests_without_a_key_are_401(app: Any) -> None:
    anonymous = keyed_client(app, None)
    for method, path in (
        ("post", "/v1/jobs/detect"),
        ("get", "/v1/people"),
        ("get", "/modelfr?ip=http://x/"),
        ("get", "/v1/jobs/abc"),
    ):
        response = getattr(anonymous, method)(path, json={})
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_wrong_key_is_401(app: Any) -> None:
    response = keyed_client(app, "not-a-real-key-000000").get("/v1/people")
    assert response.status_code == 401


def test_bearer_token_is_accepted(app: Any) -> None:
    response = app.test_client().get("/v1/people", headers={"Authorization": f"Bearer {JOBS_KEY}"})
    assert response.status_code == 200


def test_jobs_role_cannot_manage_the_facebank(app: Any) -> None:
    jobs = keyed_client(app, JOBS_KEY)
    assert jobs.get("/v1/people").status_code == 200
    refused = jobs.post("/v1/people", json={"display_name": "Mallory"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    assert jobs.post("/v1/facebank/rebuild").status_code == 403


def test_admin_can_manage_the_facebank(app: Any) -> None:
    admin = keyed_client(app, ADMIN_KEY)
    created = admin.post("/v1/people", json={"display_name": "Auth Test", "external_id": "auth-test-1"})
    assert created.status_code == 201
    assert admin.delete(f"/v1/people/{created.get_json()['id']}").status_code == 204


def test_health_and_openapi_need_no_key(app: Any) -> None:
    anonymous = keyed_client(app, None)
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200


def test_auth_can_be_disabled_for_a_trusted_lan(redis_server: Any) -> None:
    open_app = migrated_app(Settings(auth_disabled=True))
    assert keyed_client(open_app, None).get("/v1/people").status_code == 200


def test_seed_routes_can_be_opened_alone(redis_server: Any) -> None:
    seed_open = keyed_client(migrated_app(Settings(legacy_routes_open=True)), None)
    # Past authentication, the request is validated: a bad URL is a 400, not a 401.
    assert seed_open.get("/modelfr?ip=ftp://x").status_code == 400
    assert seed_open.get("/v1/people").status_code == 401


def test_malformed_key_configuration_is_refused() -> None:
    with pytest.raises(ValidationError, match="api_keys"):
        Settings(api_keys="short:admin")
    with pytest.raises(ValidationError, match="api_keys"):
        Settings(api_keys="a-long-enough-key-123:superuser")
    keys = Settings(api_keys=f"{ADMIN_KEY}:admin, {JOBS_KEY}:jobs").api_keys
    assert role_of(JOBS_KEY.encode(), keys) == "jobs"
    assert role_of(b"nope", keys) is None


def _example_path(rule: Any) -> str:
    """A concrete URL for a rule: 1 for integer parameters, a harmless word for the others."""
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<int:{name}>", "1").replace(f"<path:{name}>", "x").replace(f"<{name}>", "x")
    return path


def test_every_route_in_the_url_map_needs_a_key_unless_it_declares_itself_public(app: Any) -> None:
    """Walk the whole URL map: without a key, only routes declared public (role=None) answer."""
    from webapi.auth import PUBLIC_UNDECLARED
    from webapi.validation import operation_of

    anonymous = keyed_client(app, None)
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_UNDECLARED:
            continue
        operation = operation_of(app.view_functions[rule.endpoint])
        assert operation is not None, f"{rule.rule} declares no role"
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = anonymous.open(_example_path(rule), method=method, json={})
            if operation.role is None:
                assert response.status_code != 401, f"{method} {rule.rule} is declared public"
            else:
                assert response.status_code == 401, f"{method} {rule.rule} answered without a key"
                assert response.get_json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked >= 35


@pytest.mark.parametrize("auth_disabled", [False, True])
def test_a_route_that_declares_no_role_refuses_every_request(redis_server: Any, auth_disabled: bool) -> None:
    """Deny by default: a view added without ``documented`` answers 403 even to an admin key."""
    fresh = migrated_app(Settings(auth_disabled=auth_disabled))

    @fresh.get("/forgotten")
    def forgotten() -> Any:
        return {"secret": "leaked"}

    for key in (None, JOBS_KEY, ADMIN_KEY):
        response = keyed_client(fresh, key).get("/forgotten")
        assert response.status_code == 403, (key, response.get_data(as_text=True))
        assert response.get_json()["error"]["code"] == "forbidden"
    assert keyed_client(fresh, None).get("/static/app.js").status_code == 200  # the page's script


def _legacy_detect(system: Any, key: str | None, address: str = "127.0.0.1") -> Any:
    client = system.client(key)
    client.environ_base["REMOTE_ADDR"] = address
    return client.get("/modelfr", query_string={"ip": "http://127.0.0.1:9/frame.jpg"})


def test_random_keys_on_open_legacy_routes_share_one_rate_budget_per_address(system_factory: Any) -> None:
    """Issue 26: a new random key per request was a new identity, so 12 of 12 passed a limit of 5."""
    system = system_factory(
        "anon-rate",
        ROLLCALL_LEGACY_ROUTES_OPEN="true",
        ROLLCALL_RATE_LIMIT_PER_MINUTE="5",
        ROLLCALL_LEGACY_WAIT_S="0.1",  # no worker: an admitted request answers 504 after its short wait
    )
    statuses = []
    for _ in range(11):  # two one-minute windows at most, should one end during the loop
        response = _legacy_detect(system, secrets.token_urlsafe(24))  # a key nobody has, new each time
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert 5 <= len(statuses) - 1 <= 10, statuses
    assert _legacy_detect(system, None).status_code == 429, "no key at all is the same anonymous caller"
    assert _legacy_detect(system, secrets.token_urlsafe(24), "10.9.8.7").status_code == 504, "another address"
    assert _legacy_detect(system, JOBS_KEY).status_code == 504, "a valid key is an identity of its own"


def test_random_keys_on_open_legacy_routes_share_one_in_flight_budget_per_address(
    system_factory: Any,
) -> None:
    system = system_factory(
        "anon-inflight",
        ROLLCALL_LEGACY_ROUTES_OPEN="true",
        ROLLCALL_MAX_JOBS_IN_FLIGHT="2",
        ROLLCALL_LEGACY_WAIT_S="3",  # no worker: each admitted job stays in flight while its request waits
    )
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: _legacy_detect(system, secrets.token_urlsafe(24)), range(4)))
    codes = sorted(answer.get_json()["error"]["code"] for answer in answers)
    assert codes == ["job_timeout", "job_timeout", "too_many_jobs_in_flight", "too_many_jobs_in_flight"]
