"""Leases, heartbeats, watches and shared frames on a real Redis: the state readers coordinate through.

What a user would notice: a camera has one reader at a time, a dead reader's camera is taken over (and
the lease log says so), a camera is live exactly while someone watches it, and a shared frame is taken
only while it is fresh.
"""

from __future__ import annotations

import time

import pytest
import redis

import errors
from live.demand import Demand
from live.framestore import FrameStore
from live.leases import Leases, lease_log
from tests.conftest import wait_until


def test_one_reader_holds_a_camera_until_it_releases_it(live_redis: redis.Redis) -> None:
    first, second = Leases(live_redis, "reader-a", 5), Leases(live_redis, "reader-b", 5)
    lease = first.acquire("room12")
    assert lease is not None and lease.took_over_from is None
    assert second.acquire("room12") is None
    assert first.renew(lease)
    assert first.holder("room12") == "reader-a"
    assert first.release(lease)
    taken = second.acquire("room12")
    assert taken is not None and taken.took_over_from is None  # released cleanly: no takeover
    assert [(e["reader"], e["event"]) for e in lease_log(live_redis)] == [
        ("reader-a", "acquired"),
        ("reader-a", "released"),
        ("reader-b", "acquired"),
    ]


def test_a_lease_that_is_not_renewed_is_taken_over_and_its_holder_cannot_renew_it(
    live_redis: redis.Redis,
) -> None:
    dead, alive = Leases(live_redis, "reader-dead", 1), Leases(live_redis, "reader-alive", 1)
    lease = dead.acquire("room12")
    assert lease is not None
    assert alive.acquire("room12") is None
    assert not lease.expiring(0.5)
    wait_until(
        lambda: (taken := alive.acquire("room12")) is not None and bool(taken.took_over_from), 3, "takeover"
    )
    assert lease.expiring(0.0)  # the old holder knows its lease is over by its own clock, Redis aside
    assert not dead.renew(lease)
    assert not dead.release(lease)  # its release cannot free the new holder's lease
    assert alive.holder("room12") == "reader-alive"
    entries = lease_log(live_redis)
    assert entries[-1] == {
        "camera": "room12",
        "reader": "reader-alive",
        "event": "took-over",
        "from": "reader-dead",
    }


def test_heartbeats_count_the_readers_alive(live_redis: redis.Redis) -> None:
    a, b = Leases(live_redis, "reader-a", 1), Leases(live_redis, "reader-b", 5)
    assert a.heartbeat() == 1
    assert b.heartbeat() == 2
    b.leave()
    assert a.heartbeat() == 1
    b.heartbeat()
    time.sleep(1.2)  # a's heartbeat (1 s) runs out
    assert b.heartbeat() == 1


def test_a_camera_is_live_while_a_watch_on_it_lasts(live_redis: redis.Redis) -> None:
    demand = Demand(live_redis)
    assert demand.live_cameras() == []
    demand.watch("room12", "page-1", 30)
    demand.watch("room12", "page-2", 1)
    demand.watch("lab", "page-1", 30)
    assert demand.live_cameras() == ["lab", "room12"]
    assert demand.leave("room12", "page-1")  # page-2 still watches
    assert demand.live_cameras() == ["lab", "room12"]
    wait_until(lambda: demand.live_cameras() == ["lab"], 3, "page-2's watch to run out")
    assert not demand.leave("lab", "page-1")
    assert demand.live_cameras() == []


def test_watching_again_extends_a_watch(live_redis: redis.Redis) -> None:
    demand = Demand(live_redis)
    demand.watch("room12", "page", 1)
    time.sleep(0.6)
    demand.watch("room12", "page", 1)
    time.sleep(0.6)
    assert demand.live_cameras() == ["room12"]  # 1.2 s after the first watch


def test_a_shared_frame_is_taken_only_while_fresh(live_redis: redis.Redis) -> None:
    frames = FrameStore(live_redis, ttl_s=3, max_bytes=1000)
    assert frames.latest("room12", 1) is None
    frames.publish("room12", b"\xff\xd8jpeg", ts=1234.5, frame_no=7, width=640, height=480, reader="r1")
    shared = frames.latest("room12", 1)
    assert shared is not None
    assert (shared.data, shared.ts, shared.frame_no, shared.width, shared.height) == (
        b"\xff\xd8jpeg",
        1234.5,
        7,
        640,
        480,
    )
    assert shared.reader == "r1" and shared.age_s < 0.5
    time.sleep(1.1)
    assert frames.latest("room12", 1) is None  # older than a second: not fresh
    old = frames.latest("room12", 5)
    assert old is not None and old.age_s >= 1.0
    frames.forget("room12")
    assert frames.latest("room12", 5) is None


def test_a_frame_over_the_bound_is_not_shared(live_redis: redis.Redis) -> None:
    frames = FrameStore(live_redis, ttl_s=3, max_bytes=1000)
    with pytest.raises(errors.FrameTooLarge, match="ROLLCALL_LIVE_FRAME_MAX_BYTES"):
        frames.publish("room12", b"x" * 1001, ts=1.0, frame_no=1, width=1, height=1, reader="r1")
    assert frames.latest("room12", 5) is None
