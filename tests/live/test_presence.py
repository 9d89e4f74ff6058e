"""Presence on a camera: one ``arrived`` per person after ``arrive_s``, one ``left`` after ``leave_s``."""

from __future__ import annotations

import pytest

from live.presence import PresenceBoard

OBAMA = {4: "obama"}


def feed(board: PresenceBoard, frames: list[tuple[float, dict[int, str]]]) -> list[tuple[str, str, float]]:
    changes = []
    for ts, named in frames:
        changes += [(c.name, c.event, c.ts) for c in board.update(ts, named)]
    return changes


def seconds(
    start: float, stop: float, named: dict[int, str], fps: float = 10.0
) -> list[tuple[float, dict[int, str]]]:
    count = round((stop - start) * fps)
    return [(start + i / fps, named) for i in range(count)]


def test_a_person_arrives_once_after_being_named_for_arrive_s() -> None:
    board = PresenceBoard("room12", arrive_s=2.0, leave_s=5.0)
    changes = feed(board, seconds(100.0, 110.0, OBAMA))
    assert changes == [("obama", "arrived", pytest.approx(102.0))]
    assert board.present() == OBAMA


def test_two_tracks_of_one_person_are_one_presence() -> None:
    board = PresenceBoard("room12", arrive_s=0.0, leave_s=5.0)
    # The processor names each person once per frame, whatever number of tracks name them.
    changes = feed(board, seconds(0.0, 3.0, {4: "obama", 2: "biden"}) + seconds(3.0, 6.0, OBAMA))
    assert [(name, event) for name, event, _ in changes] == [("obama", "arrived"), ("biden", "arrived")]


def test_a_short_gap_is_no_departure_and_a_long_one_is_one() -> None:
    board = PresenceBoard("room12", arrive_s=1.0, leave_s=5.0)
    frames = (
        seconds(0.0, 3.0, OBAMA) + seconds(3.0, 7.0, {}) + seconds(7.0, 9.0, OBAMA) + seconds(9.0, 20.0, {})
    )
    changes = feed(board, frames)
    assert changes == [
        ("obama", "arrived", pytest.approx(1.0)),
        ("obama", "left", pytest.approx(8.9 + 5.0)),  # last named at 8.9
    ]
    assert board.present() == {}


def test_a_person_who_left_arrives_again_when_they_come_back() -> None:
    board = PresenceBoard("room12", arrive_s=1.0, leave_s=2.0)
    frames = seconds(0.0, 2.0, OBAMA) + seconds(2.0, 5.0, {}) + seconds(5.0, 7.0, OBAMA)
    assert [event for _, event, _ in feed(board, frames)] == ["arrived", "left", "arrived"]


def test_someone_named_for_less_than_arrive_s_never_arrives_nor_leaves() -> None:
    board = PresenceBoard("room12", arrive_s=2.0, leave_s=1.0)
    assert feed(board, seconds(0.0, 1.5, OBAMA) + seconds(1.5, 5.0, {})) == []
