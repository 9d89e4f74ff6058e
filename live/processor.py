"""``LiveProcessor``: one camera's frames turned into live events, faces tracked and named once per track.

Per frame: detect the faces (on every ``detect_every``-th frame; the tracker predicts in between),
join them to tracks (``live.tracking``), and embed only the tracks that need it: a track's first good
face (big, sharp and frontal enough: the enrolment measures of ``ml.quality`` with live limits), then
again only while its identity is uncertain or every ``reembed_s`` seconds (``live.identity``). Every
embedding of a frame goes through the network as one batch and is matched against the facebank in one
product. The name a track shows is its vote's, and known people's arrivals and departures are
debounced per person (``live.presence``).

At 640×480 detection costs most of a frame; the embeddings are a fraction of a frame's worth per
second. Each event carries the processor's own time per stage (``timings_ms``) so a reader that decodes
faster than this processes can drop frames.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from live.events import FrameSize, LiveEvent, LiveTrack
from live.factory import ReaderContext
from live.identity import IdentityVote, Vote, VoteRules
from live.presence import PresenceBoard
from live.processing import EndedTrack, ProcessedFrame
from live.tracking import FaceTracker, TrackedFace
from ml.bounded import at_least, detect_bounded
from ml.mtcnn import Detections
from ml.pipeline import FacePipeline
from ml.quality import FaceQuality, measure_face
from ml.timing import StageTimer
from recognition.gallery import match_faces
from recognition.snapshot import FacebankSnapshot
from settings import Settings

# A face's crop kept for people to see ("unknown person N"): its box and this much of its size around it.
_CROP_MARGIN = 0.3
# JPEG quality of an ended track's best face (shown to people: "unknown person N", with an enrol action).
_BEST_FACE_JPEG_QUALITY = 90
# A face whose box reaches further than this fraction of its size past the frame's edge is cut off: its
# landmarks are guesses and its embedding a poor vote (someone walking in, half in the picture).
_CUT_OFF = 0.1


@dataclass(frozen=True, slots=True)
class QualityGate:
    """How good a tracked face must be before it is embedded (live counterparts of the enrolment limits)."""

    min_face_px: float
    min_sharpness: float
    max_yaw: float
    max_roll_deg: float

    def passes(self, quality: FaceQuality) -> bool:
        return (
            quality.face_px >= self.min_face_px
            and quality.sharpness >= self.min_sharpness
            and abs(quality.yaw) <= self.max_yaw
            and abs(quality.roll_deg) <= self.max_roll_deg
        )


@dataclass(frozen=True, slots=True)
class LiveParams:
    """Everything a live processor is configured with (``from_settings``: ``ROLLCALL_LIVE_*``)."""

    min_face_px: int
    min_face_prob: float
    detect_every: int
    track_keep_s: float
    gate: QualityGate
    votes: VoteRules
    uncertain_embed_s: float
    reembed_s: float
    arrive_s: float
    leave_s: float
    flip: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveParams:
        return cls(
            min_face_px=settings.live_min_face_px,
            min_face_prob=settings.live_min_face_prob,
            detect_every=settings.live_detect_every,
            track_keep_s=settings.live_track_keep_s,
            gate=QualityGate(
                settings.live_identify_min_face_px,
                settings.live_identify_min_sharpness,
                settings.live_identify_max_yaw,
                settings.live_identify_max_roll_deg,
            ),
            votes=VoteRules(
                settings.live_vote_embeddings, settings.live_switch_votes, settings.live_uncertain_margin
            ),
            uncertain_embed_s=settings.live_uncertain_embed_s,
            reembed_s=settings.live_reembed_s,
            arrive_s=settings.live_arrive_s,
            leave_s=settings.live_leave_s,
            flip=settings.match_flip,
        )


@dataclass(frozen=True, eq=False)
class BestFace:
    """The best-judged face a track has shown so far (largest and most frontal among those embedded)."""

    ts: float
    quality: FaceQuality
    chip_rgb: np.ndarray  # the aligned chip the embedder saw
    crop_bgr: np.ndarray  # the face and some of its surroundings, as the camera saw it


@dataclass(eq=False)
class TrackRecord:
    """What one track has shown: when, who its vote names, its last embeddings and its best face.

    Kept while the track lives and handed to ``on_track_end`` when it ends: the later stages (sessions,
    grouping of unknown faces) read the embeddings and best face of tracks nobody was named for.
    """

    camera: str
    track_id: int
    first_seen: float
    last_seen: float
    vote: IdentityVote
    embeddings: deque[np.ndarray]  # the vote's embeddings (L2-normalised), oldest first
    name: str | None = None
    best_face: BestFace | None = None
    last_embedded: float | None = None
    embedded: int = 0  # embeddings computed for this track in all

    @property
    def person_id(self) -> int | None:
        return self.vote.person_id


@dataclass
class _Frame:
    """The state of the frame being processed, passed between the steps of ``process``."""

    image: np.ndarray
    ts: float
    timer: StageTimer = field(default_factory=StageTimer)
    embedded: set[int] = field(default_factory=set)
    ended: list[EndedTrack] = field(default_factory=list)


class LiveProcessor:
    """Implements ``live.processing.FrameProcessor`` for one camera: frames in, events and presence out.

    ``bank`` answers the current facebank snapshot (``recognition.snapshot.Snapshots.take`` in a reader);
    it is called only on frames that embed a face. ``fps`` is the rate the reader decodes at, which
    turns ``track_keep_s`` into frames. ``on_track_end`` receives each track that ended (lost for good,
    or every open one at ``close``); each ended track also comes back as an ``EndedTrack`` in the frame's
    ``ProcessedFrame.ended`` (or ``close``'s answer), for a reader's sinks. Processors sharing a pipeline
    must not run ``process`` at the same time: its OpenVINO networks hold one inference request each.
    """

    def __init__(
        self,
        camera: str,
        pipe: FacePipeline,
        bank: Callable[[], FacebankSnapshot],
        params: LiveParams,
        fps: float,
        on_track_end: Callable[[TrackRecord], None] | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.camera = camera
        self.pipe = pipe
        self.params = params
        self._bank = bank
        self._on_track_end = on_track_end
        self._detect_params = dataclasses.replace(pipe.params, min_face_size=params.min_face_px)
        self._tracker = FaceTracker(keep_frames=max(1, math.ceil(params.track_keep_s * fps)))
        self._presence = PresenceBoard(camera, params.arrive_s, params.leave_s)
        self._records: dict[int, TrackRecord] = {}
        self._threshold: float | None = None  # the facebank's, as of the last embedding
        self._frames = 0
        self._closed = False

    def process(self, image: np.ndarray, ts: float) -> ProcessedFrame:
        if self._closed:
            raise RuntimeError(f"the live processor of camera {self.camera!r} is closed")
        frame = _Frame(image, ts)
        detect_now = self._frames % self.params.detect_every == 0
        self._frames += 1
        with frame.timer.stage("detect"):
            detections = self._detect(image) if detect_now else None
        with frame.timer.stage("track"):
            faces = self._tracker.update(detections, period=self.params.detect_every)
            frame.ended = self._end_tracks(self._tracker.live_ids())
        records = [self._record(face, ts) for face in faces]
        self._identify(frame, [(f, r) for f, r in zip(faces, records, strict=True) if self._due(f, r, frame)])
        named = {r.person_id: r.name or "" for r in records if r.person_id is not None}
        presence = self._presence.update(ts, named)
        event = LiveEvent(
            camera=self.camera,
            ts=ts,
            frame_size=FrameSize(width=int(image.shape[1]), height=int(image.shape[0])),
            tracks=[
                _track_out(f, r, f.track_id in frame.embedded) for f, r in zip(faces, records, strict=True)
            ],
            timings_ms=frame.timer.report(),
        )
        return ProcessedFrame(event.model_dump(mode="json"), presence, frame.ended)

    def close(self) -> list[EndedTrack]:
        """Stop: every open track ends (``on_track_end``, and the answer), and nothing more is processed."""
        self._closed = True
        return self._end_tracks(set())

    def tracks(self) -> list[TrackRecord]:
        """The records of the tracks alive now."""
        return list(self._records.values())

    def present(self) -> dict[int, str]:
        """The known people present on the camera now (id → display name)."""
        return self._presence.present()

    # --- the steps of a frame ---

    def _detect(self, image: np.ndarray) -> Detections:
        found = detect_bounded(self.pipe.detector, [image], self._detect_params, self.pipe.max_detect_side)[0]
        return at_least(found, self.params.min_face_prob)

    def _record(self, face: TrackedFace, ts: float) -> TrackRecord:
        record = self._records.get(face.track_id)
        if record is None:
            record = self._records[face.track_id] = TrackRecord(
                self.camera,
                face.track_id,
                first_seen=ts,
                last_seen=ts,
                vote=IdentityVote(self.params.votes),
                embeddings=deque(maxlen=self.params.votes.window),
            )
        record.last_seen = ts
        return record

    def _due(self, face: TrackedFace, record: TrackRecord, frame: _Frame) -> bool:
        """Whether this face should be embedded now: detected on this frame (exact landmarks), whole in
        the picture, and never embedded yet or past its interval (short while its identity is uncertain)."""
        if not face.detected or _cut_off(face.box, frame.image.shape):
            return False
        ts = frame.ts
        if record.last_embedded is None:
            return True
        settled = self._threshold is not None and record.vote.settled(self._threshold)
        interval = self.params.reembed_s if settled else self.params.uncertain_embed_s
        return ts - record.last_embedded >= interval

    def _identify(self, frame: _Frame, due: list[tuple[TrackedFace, TrackRecord]]) -> None:
        """Embed the due faces good enough for it, in one batch, and count each one's vote."""
        if not due:
            return
        with frame.timer.stage("quality"):
            landmarks = np.stack([face.landmarks for face, _ in due])
            chips = self.pipe.align(frame.image, landmarks)
            good = []
            for index, (face, record) in enumerate(due):
                quality = measure_face(face.box, face.landmarks, chips[index])
                if self.params.gate.passes(quality):
                    good.append(index)
                    self._keep_best(record, face, quality, chips[index], frame)
        if not good:
            return
        bank = self._bank()
        self._threshold = bank.threshold
        with frame.timer.stage("embed"):
            vectors = self.pipe.embed_chips(chips[good], self.params.flip)
        with frame.timer.stage("match"):
            matches = match_faces(vectors, bank.gallery, bank.threshold, top_k=1)
        for index, vector, match in zip(good, vectors, matches, strict=True):
            face, record = due[index]
            record.vote.add(Vote(match.person_id, match.score), bank.threshold)
            record.embeddings.append(vector)
            record.last_embedded = frame.ts
            record.embedded += 1
            person = bank.people.get(record.person_id) if record.person_id is not None else None
            record.name = person.display_name if person is not None else None
            frame.embedded.add(face.track_id)

    def _keep_best(
        self, record: TrackRecord, face: TrackedFace, quality: FaceQuality, chip: np.ndarray, frame: _Frame
    ) -> None:
        best = record.best_face
        if best is not None and _face_score(best.quality) >= _face_score(quality):
            return
        record.best_face = BestFace(frame.ts, quality, chip.copy(), _crop(frame.image, face.box))

    def _end_tracks(self, alive: set[int]) -> list[EndedTrack]:
        ended = []
        for track_id in [t for t in self._records if t not in alive]:
            record = self._records.pop(track_id)
            if self._on_track_end is not None:
                self._on_track_end(record)
            ended.append(ended_track(record))
        return ended


def ended_track(record: TrackRecord) -> EndedTrack:
    """A finished track's record as the reader's sinks take it (embeddings stacked, best face as JPEG)."""
    if record.embeddings:
        embeddings = np.stack(list(record.embeddings)).astype(np.float32)
    else:
        embeddings = np.zeros((0, 0), dtype=np.float32)
    jpeg = None
    if record.best_face is not None and record.best_face.crop_bgr.size:
        ok, encoded = cv2.imencode(
            ".jpg", record.best_face.crop_bgr, [cv2.IMWRITE_JPEG_QUALITY, _BEST_FACE_JPEG_QUALITY]
        )
        jpeg = encoded.tobytes() if ok else None
    return EndedTrack(
        camera=record.camera,
        track_id=record.track_id,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        person_id=record.person_id,
        name=record.name,
        embeddings=embeddings,
        embedded=record.embedded,
        best_face_jpeg=jpeg,
    )


def for_reader(camera: str, context: ReaderContext) -> LiveProcessor:
    """The reader's processor factory (``ROLLCALL_LIVE_PROCESSOR=live.processor:for_reader``): the reader
    process's loaded models, its facebank snapshots, the live settings and the reader's decode rate."""
    settings = context.settings
    return LiveProcessor(
        camera, context.pipeline(), context.snapshot, LiveParams.from_settings(settings), settings.live_fps
    )


def _track_out(face: TrackedFace, record: TrackRecord, embedded: bool) -> LiveTrack:
    confidence = record.vote.confidence()
    return LiveTrack(
        track_id=face.track_id,
        box=[round(float(v), 1) for v in face.box],
        landmarks=[[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks],
        person_id=record.person_id,
        name=record.name,
        confidence=round(confidence, 4) if confidence is not None else None,
        embedded=embedded,
    )


def _cut_off(box: np.ndarray, shape: tuple[int, ...]) -> bool:
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * _CUT_OFF, (y2 - y1) * _CUT_OFF
    return x1 < -mx or y1 < -my or x2 > shape[1] + mx or y2 > shape[0] + my


def _face_score(quality: FaceQuality) -> float:
    """Bigger and more frontal is better (the gate already refused blurred and turned faces)."""
    return quality.face_px * (1.0 - min(abs(quality.yaw), 1.0))


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * _CROP_MARGIN, (y2 - y1) * _CROP_MARGIN
    height, width = image.shape[:2]
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(width, int(math.ceil(x2 + mx))), min(height, int(math.ceil(y2 + my)))
    return image[top:bottom, left:right].copy()
