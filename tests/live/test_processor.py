"""The live processor on camera-like scenes: the real detector and embedder, a real facebank, in process.

Each scene (``benchmarks.live_scenes``) is run once per module; the tests read what its frames gave:
track ids, names, embeddings and presence events, against where each face truly was.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks import live_scenes
from benchmarks.live_scenes import UNKNOWN
from live.events import LiveEvent
from live.processor import LiveProcessor
from ml.pipeline import FacePipeline
from tests.live.conftest import START, Enrolled, Run, enrolled_facebank, live_params, run_scene

FPS = 10.0
ARRIVE_S = 2.0  # the defaults of ROLLCALL_LIVE_ARRIVE_S and ROLLCALL_LIVE_LEAVE_S
LEAVE_S = 5.0


@pytest.fixture(scope="module")
def still_pair(pipe: FacePipeline, enrolled: Enrolled) -> Run:
    return run_scene(live_scenes.still_pair(120, FPS), pipe, enrolled)


@pytest.fixture(scope="module")
def still_group(pipe: FacePipeline, enrolled: Enrolled) -> Run:
    return run_scene(live_scenes.still_group(120, FPS), pipe, enrolled)


def _known(run: Run) -> list[tuple[str, str]]:
    """(key, who) of the enrolled people on the scene's first frame."""
    return [(t.key, t.who) for t in run.truths[0] if t.who != UNKNOWN]


@pytest.mark.parametrize("scene", ["still_pair", "still_group"])
def test_every_enrolled_person_on_a_still_scene_keeps_one_track_and_one_name(
    scene: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(scene)
    assert len(_known(run)) == 2
    for key, who in _known(run):
        tracks = run.tracks_of(key)
        assert all(t is not None for t in tracks), f"{who} was not tracked on every frame"
        assert len({t["track_id"] for t in tracks if t}) == 1, f"{who} changed track"
        names = [t["name"] for t in tracks if t]
        assert names[0] == who, f"{who} was not named on the first frame: {names[:5]}"
        assert set(names) == {who}, f"{who}'s name changed: {Counter(names)}"


def test_a_stranger_on_a_still_scene_is_tracked_and_never_named(still_group: Run) -> None:
    (stranger,) = [t.key for t in still_group.truths[0] if t.who == UNKNOWN]
    tracks = [t for t in still_group.tracks_of(stranger) if t is not None]
    assert len(tracks) >= 0.9 * still_group.scene.length
    assert {t["name"] for t in tracks} == {None}
    assert {t["person_id"] for t in tracks} == {None}


@pytest.mark.parametrize("scene", ["still_pair", "still_group"])
def test_a_still_scene_embeds_each_track_at_most_once_a_second(
    scene: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(scene)
    embedded: Counter[int] = Counter()
    for event in run.events:
        embedded.update(t["track_id"] for t in event["tracks"] if t["embedded"])
    for key, who in _known(run):
        (track_id,) = {t["track_id"] for t in run.tracks_of(key) if t}
        assert 1 <= embedded[track_id] <= run.seconds(), f"{who}: {embedded[track_id]} embeddings"
    face_frames = sum(len(event["tracks"]) for event in run.events)
    assert sum(embedded.values()) <= 0.05 * face_frames


def test_the_embedded_flag_counts_every_embedding_of_a_track(still_group: Run) -> None:
    flagged: Counter[int] = Counter()
    for event in still_group.events:
        flagged.update(t["track_id"] for t in event["tracks"] if t["embedded"])
    made = {record.track_id: record.embedded for record in still_group.ended}
    assert flagged == Counter({track: count for track, count in made.items() if count})


def test_known_people_arrive_once_after_being_named_for_arrive_s_and_strangers_never(
    still_group: Run, enrolled: Enrolled
) -> None:
    arrivals = [(c.person_id, c.name, c.event) for c in still_group.presence]
    expected = {(enrolled.ids[who], who, "arrived") for _, who in _known(still_group)}
    assert sorted(arrivals) == sorted(expected)
    for change in still_group.presence:
        assert change.camera == "room12"
        assert START + ARRIVE_S <= change.ts <= START + ARRIVE_S + 1.0


def test_events_are_valid_live_events_with_boxes_where_the_faces_are(still_pair: Run) -> None:
    for index, (event, truth) in enumerate(zip(still_pair.events, still_pair.truths, strict=True)):
        parsed = LiveEvent.model_validate(event)
        assert parsed.camera == "room12"
        assert parsed.ts == pytest.approx(START + index / FPS)
        assert (parsed.frame_size.width, parsed.frame_size.height) == (640, 480)
        assert len(parsed.tracks) == len(truth) == 2
        assert parsed.timings_ms["total"] >= parsed.timings_ms["detect"] > 0
        for track in parsed.tracks:
            assert len(track.landmarks) == 5
            best = max(live_scenes.box_iou(np.asarray(track.box), t.box) for t in truth)
            assert best >= 0.6


def test_a_person_walking_in_gets_a_track_a_name_and_one_arrival(
    pipe: FacePipeline, enrolled: Enrolled
) -> None:
    run = run_scene(live_scenes.walk_in(70, FPS), pipe, enrolled)
    tracks = run.tracks_of("obama")
    seen = [i for i, t in enumerate(tracks) if t is not None]
    assert seen and seen[0] <= 15  # walks in from frame 10
    assert len({tracks[i]["track_id"] for i in seen}) == 1
    named = [i for i in seen if tracks[i]["name"] == "obama"]
    assert named and named[0] - seen[0] <= 15, "obama was not named within 1.5 s of walking in"
    assert all(tracks[i]["name"] == "obama" for i in seen if i >= named[0])
    obama = [c for c in run.presence if c.name == "obama"]
    assert [c.event for c in obama] == ["arrived"]
    assert obama[0].ts >= START + named[0] / FPS + ARRIVE_S - 1e-6


def test_a_person_who_leaves_is_reported_left_once_after_leave_s(
    pipe: FacePipeline, enrolled: Enrolled
) -> None:
    run = run_scene(live_scenes.leave(100, FPS), pipe, enrolled)
    last_visible = max(
        i for i, truth in enumerate(run.truths) if any(t.key == "kit_harington" for t in truth)
    )
    kit = [c for c in run.presence if c.name == "kit_harington"]
    assert [c.event for c in kit] == ["arrived", "left"]
    assert (
        START + last_visible / FPS + LEAVE_S - 0.5 <= kit[1].ts <= START + last_visible / FPS + LEAVE_S + 2.0
    )
    assert [c.event for c in run.presence if c.name == "rose_leslie"] == ["arrived"]
    (kit_track,) = [r for r in run.ended if r.name == "kit_harington"]
    assert kit_track.last_seen <= START + (last_visible + 1) / FPS


def test_a_person_hidden_for_a_moment_keeps_their_track_and_name(
    pipe: FacePipeline, enrolled: Enrolled
) -> None:
    run = run_scene(live_scenes.crossing(60, FPS), pipe, enrolled)
    hidden = [i for i, truth in enumerate(run.truths) if not any(t.key == "kit_harington" for t in truth)]
    assert hidden, "the scene never hid Kit"
    kit = run.tracks_of("kit_harington")
    assert len({t["track_id"] for t in kit if t}) == 1
    assert {t["name"] for t in kit if t} == {"kit_harington"}
    tracks = run.tracks_of("biden")
    biden = [t for t in tracks if t]
    assert len({t["track_id"] for t in biden}) == 1
    assert {t["name"] for t in biden} <= {None, "biden"}
    # Named as soon as his face is whole in the picture (a face cut by the edge is never embedded).
    whole = next(i for i, truth in enumerate(run.truths) for t in truth if t.key == "biden" and t.box[0] >= 0)
    assert all(t and t["name"] == "biden" for t in tracks[whole + 2 :] if t)
    assert tracks[whole + 2] is not None


def test_detecting_every_other_frame_keeps_ids_and_names_and_predicts_faces_between(
    pipe: FacePipeline, enrolled: Enrolled
) -> None:
    run = run_scene(live_scenes.still_pair(40, FPS), pipe, enrolled, live_params(live_detect_every=2))
    for key, who in _known(run):
        tracks = run.tracks_of(key)
        assert all(t is not None for t in tracks)
        assert len({t["track_id"] for t in tracks if t}) == 1
        assert {t["name"] for t in tracks if t} == {who}
    for index, event in enumerate(run.events):
        if index % 2 == 1:  # predicted: no detection, no embedding
            assert event["timings_ms"].get("detect", 0.0) < 1.0
            assert not any(t["embedded"] for t in event["tracks"])


def test_an_unknown_face_is_named_soon_after_its_person_is_enrolled(
    pipe: FacePipeline, tmp_path: Path, enrolled: Enrolled
) -> None:
    people = enrolled_facebank(pipe, tmp_path, leave_out=("obama",))
    enrol_at = 30
    try:

        def enrol_obama(index: int) -> None:
            if index == enrol_at:
                live_scenes.enrol_shared_people(pipe, people.facebank, ["obama"])

        run = run_scene(live_scenes.still_pair(80, FPS), pipe, people, between=enrol_obama)
    finally:
        people.facebank.close()
    tracks = run.tracks_of("two_people.jpg#1")  # Obama, on the left
    assert len({t["track_id"] for t in tracks if t}) == 1
    names = [t["name"] if t else None for t in tracks]
    assert set(names[:enrol_at]) == {None}
    reembed_frames = int(live_params().reembed_s * FPS)
    assert set(names[enrol_at + reembed_frames + 1 :]) == {"obama"}


def test_ended_tracks_carry_their_best_face_and_embeddings(still_group: Run) -> None:
    by_name = {record.name: record for record in still_group.ended}
    assert set(by_name) == {"obama", "biden", None}
    for record in still_group.ended:
        assert START <= record.first_seen < record.last_seen
        assert record.best_face is not None
        height, width = record.best_face.crop_bgr.shape[:2]
        assert min(height, width) >= record.best_face.quality.face_px
        assert record.best_face.chip_rgb.shape == (150, 150, 3)
        assert 1 <= len(record.embeddings) <= record.embedded
        assert np.allclose([np.linalg.norm(v) for v in record.embeddings], 1.0, atol=1e-4)
    # The stranger's embeddings agree with one another: what grouping unknown faces relies on.
    stranger = np.stack(by_name[None].embeddings)
    assert float((stranger @ stranger.T).min()) > 0.9


def test_a_closed_processor_refuses_frames(pipe: FacePipeline, enrolled: Enrolled) -> None:
    processor = LiveProcessor("room12", pipe, enrolled.snapshots.take, live_params(), FPS)
    image, _ = live_scenes.still_pair(1).frame(0)
    processor.process(image, START)
    assert len(processor.tracks()) == 2
    processor.close()
    assert processor.tracks() == []
    with pytest.raises(RuntimeError, match="closed"):
        processor.process(image, START + 0.1)
