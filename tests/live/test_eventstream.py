"""One client's event stream (``live.eventstream``) over a real Redis, in this process: what the API's
``GET /v1/cameras/<name>/events`` sends, at the client's rate, and the watch it keeps.

What a user would notice: a burst of events reaches a slow client as its first and its newest, never a
backlog; each event carries exactly the issue's fields; a quiet camera still sends keepalives; the
stream makes the camera live while it is open and lets it go when it closes, whether or not it was read.
"""

from __future__ import annotations

import json
import time

import redis

from live import keys
from live.demand import Demand
from live.eventstream import EventStream, StreamConfig

TRACK = {
    "track_id": 1,
    "box": [10.0, 20.0, 60.0, 80.0],
    "landmarks": [[20.0, 40.0], [45.0, 40.0], [33.0, 55.0], [24.0, 68.0], [44.0, 68.0]],
    "person_id": 3,
    "name": "obama",
    "confidence": 0.91,
    "embedded": False,
}


def event(n: int) -> str:
    """The processor's event of frame ``n`` as the reader publishes it (timings included)."""
    body = {
        "camera": "room12",
        "ts": 1000.0 + n,
        "frame_size": {"width": 640, "height": 480},
        "tracks": [TRACK],
        "timings_ms": {"detect": 30.0, "total": 31.0},
    }
    return json.dumps(body)


def read_blocks(stream: EventStream, count: int) -> list[tuple[float, bytes]]:
    """The next ``count`` SSE blocks the stream yields (comments included), with when each came."""
    blocks = []
    iterator = iter(stream)
    for _ in range(count):
        block = next(iterator)
        blocks.append((time.monotonic(), block))
    return blocks


def data_of(block: bytes) -> dict[str, object]:
    assert block.startswith(b"data: ") and block.endswith(b"\n\n") and block.count(b"\n") == 2, block
    parsed: dict[str, object] = json.loads(block[len(b"data: ") :])
    return parsed


def test_a_burst_reaches_a_slow_client_as_its_first_and_newest_event_at_its_rate(
    live_redis: redis.Redis,
) -> None:
    closed: list[bool] = []
    stream = EventStream(
        live_redis, "room12", "page/a", StreamConfig(fps=2, watch_ttl_s=5), lambda: closed.append(True)
    )
    try:
        with live_redis.pipeline(transaction=False) as pipe:
            for n in range(10):
                pipe.publish(keys.events_channel("room12"), event(n))
            pipe.execute()
        (_, hello), (first_at, first), (second_at, second) = read_blocks(stream, 3)
    finally:
        stream.close()
    assert hello.startswith(b"retry: ")
    assert [data_of(first)["ts"], data_of(second)["ts"]] == [1000.0, 1009.0]  # the 8 between were dropped
    assert second_at - first_at >= 0.5 - 0.01  # never faster than fps (2 a second)
    assert closed == [True]


def test_each_event_carries_exactly_the_issues_fields(live_redis: redis.Redis) -> None:
    stream = EventStream(live_redis, "room12", "page/b", StreamConfig(fps=10, watch_ttl_s=5))
    try:
        live_redis.publish(keys.events_channel("room12"), event(1))
        _, (_, block) = read_blocks(stream, 2)
    finally:
        stream.close()
    sent = data_of(block)
    assert sent == {
        "camera": "room12",
        "ts": 1001.0,
        "frame_size": {"width": 640, "height": 480},
        "tracks": [TRACK],
    }
    assert list(sent["tracks"][0]) == [  # type: ignore[index]
        "track_id", "box", "landmarks", "person_id", "name", "confidence", "embedded",
    ]  # fmt: skip


def test_a_quiet_camera_sends_keepalive_comments(live_redis: redis.Redis) -> None:
    stream = EventStream(live_redis, "room12", "page/c", StreamConfig(fps=5, watch_ttl_s=5, keepalive_s=0.2))
    try:
        blocks = [block for _, block in read_blocks(stream, 3)]
    finally:
        stream.close()
    assert blocks[1:] == [b": keepalive\n\n", b": keepalive\n\n"]


def test_the_stream_keeps_the_camera_live_while_open_and_lets_it_go_on_closing(
    live_redis: redis.Redis,
) -> None:
    demand = Demand(live_redis)
    stream = EventStream(
        live_redis, "room12", "page/d", StreamConfig(fps=5, watch_ttl_s=1.5, keepalive_s=0.2)
    )
    assert demand.live_cameras() == ["room12"]  # live from the moment it opens, before any byte is read
    blocks = read_blocks(stream, 12)  # 2.2 s of keepalives: longer than one watch's TTL
    assert blocks[-1][0] - blocks[1][0] > 1.5
    assert demand.live_cameras() == ["room12"], "the stream did not renew its watch"
    assert live_redis.pubsub_numsub(keys.events_channel("room12")) == [
        (keys.events_channel("room12").encode(), 1)
    ]
    stream.close()
    assert demand.live_cameras() == []
    assert live_redis.pubsub_numsub(keys.events_channel("room12")) == [
        (keys.events_channel("room12").encode(), 0)
    ]
    stream.close()  # closing twice is harmless


def test_a_stream_closed_before_it_was_read_ends_its_watch_and_gives_its_slot_back(
    live_redis: redis.Redis,
) -> None:
    demand, closed = Demand(live_redis), []
    stream = EventStream(
        live_redis, "room12", "page/e", StreamConfig(fps=5, watch_ttl_s=5), lambda: closed.append(1)
    )
    demand.watch("room12", "kiosk", 30)
    stream.close()
    assert closed == [1]
    assert live_redis.zrange(keys.watchers("room12"), 0, -1) == [b"kiosk"]  # the other watcher stays
