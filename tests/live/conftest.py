"""Live cameras' fixtures: a Redis of their own, so heartbeats and watches of one test never count in
another's (the camera servers and counting proxies are ``tests/cameras/fixtures.py``'s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from benchmarks.processes import free_port
from tests.conftest import RedisServer


@pytest.fixture(scope="session")
def live_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("live-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def live_redis(live_redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of an empty Redis."""
    client = redis.Redis.from_url(live_redis_server.url)
    client.flushall()
    yield client
    client.close()
