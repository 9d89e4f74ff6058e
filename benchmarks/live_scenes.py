"""Camera-like frame sequences built from the shared photos, with where each face truly is on each frame.

The live tracking tests, the ``live`` benchmark part and the tracker comparison all read these. A scene
is either a shared photo cut to 640×480 (its faces part of the picture) or a textured wall on which
faces cut from the shared photos stand still, walk in, walk out or cross one another. Every frame then
gets what a real still camera adds: a sub-pixel shake, sensor noise and JPEG compression, so detection
boxes jitter from frame to frame as they do on a stream. Who each face is comes from the photos'
own people (``datasets/MANIFEST.md``), checked by recognition in ``tests/live``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from benchmarks.classroom import _background
from benchmarks.frames import shared_dir

if TYPE_CHECKING:
    from facebank.store import Facebank
    from ml.pipeline import FacePipeline

FRAME_SIZE = (640, 480)
ORACLE = "oracles/mtcnn_facenet_pytorch"
UNKNOWN = "unknown"
# (photo, index of the face in the oracle's reference.json, who): faces of enrolled people cut from
# photos other than their enrolment photos.
FACES: dict[str, tuple[str, int, str]] = {
    "obama": ("obama_and_biden.jpg", 1, "obama"),
    "biden": ("obama_and_biden.jpg", 0, "biden"),
    "kit_harington": ("kit_with_rose.jpg", 0, "kit_harington"),
    "rose_leslie": ("kit_with_rose.jpg", 1, "rose_leslie"),
}
_CONTEXT = 0.6  # margin kept around a cut face, as a fraction of its box: hair, ears, neck


@dataclass(frozen=True, eq=False)
class Sprite:
    """A face cut from a shared photo with some head around it, sized for the scene, and a soft mask."""

    who: str
    image: np.ndarray  # BGR uint8
    alpha: np.ndarray  # float32 [h, w, 1], 1 inside, fading to 0 at the edges
    face: np.ndarray  # float32 [4]: the face box inside ``image``


@dataclass(frozen=True, eq=False)
class Actor:
    """One person on the scene: their sprite and where their face's centre is on each frame (None: away)."""

    sprite: Sprite
    path: tuple[tuple[float, float] | None, ...]


@dataclass(frozen=True)
class Truth:
    """Where a visible face is on a frame: ``key`` names the person on the scene (one per face)."""

    key: str
    who: str
    box: np.ndarray  # float32 [4] in frame pixels


@dataclass(frozen=True, eq=False)
class Scene:
    """A sequence of ``length`` frames at ``fps``; ``frame(i)`` renders frame i and its truth."""

    name: str
    base: np.ndarray  # the still picture every frame starts from (BGR, FRAME_SIZE)
    fixed: tuple[Truth, ...]  # faces that are part of ``base``
    actors: dict[str, Actor]  # faces pasted over ``base``, later ones in front
    length: int
    fps: float = 10.0
    seed: int = 0
    shake_px: float = 0.7
    noise_sigma: float = 2.0
    jpeg_quality: int = 85
    _noise: list[np.ndarray] = field(default_factory=list, repr=False)

    def frame(self, index: int) -> tuple[np.ndarray, list[Truth]]:
        """Frame ``index`` as a camera would deliver it, and the faces visible on it (half or more shown)."""
        if not 0 <= index < self.length:
            raise IndexError(f"scene {self.name} has {self.length} frames, not {index}")
        rng = np.random.default_rng((self.seed, index))
        image = self.base.copy()
        truths = list(self.fixed)
        covers: list[tuple[str, np.ndarray]] = []
        for key, actor in self.actors.items():
            centre = actor.path[index]
            if centre is None:
                continue
            box, cover = _paste(image, actor.sprite, centre)
            covers.append((key, cover))
            truths.append(Truth(key, actor.sprite.who, box))
        visible = [t for t in truths if _shown(t, covers) >= 0.5]
        dx, dy = rng.uniform(-self.shake_px, self.shake_px, 2)
        image = cv2.warpAffine(
            image,
            np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32),
            FRAME_SIZE,
            borderMode=cv2.BORDER_REFLECT,
        )
        noisy = image.astype(np.int16) + self._noise_frame(index)
        image = np.clip(noisy, 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode a scene frame as JPEG")
        decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
        if decoded is None:
            raise RuntimeError("OpenCV could not decode a scene frame it encoded")
        shift = np.array([dx, dy, dx, dy], dtype=np.float32)
        return decoded, [Truth(t.key, t.who, t.box + shift) for t in visible]

    def frames(self) -> Iterator[tuple[float, np.ndarray, list[Truth]]]:
        """(timestamp in seconds from the scene's start, frame, truth) for every frame in order."""
        for index in range(self.length):
            image, truth = self.frame(index)
            yield index / self.fps, image, truth

    def _noise_frame(self, index: int) -> np.ndarray:
        """Sensor noise: eight fixed noise fields in turn (drawing a fresh one per frame costs more than
        the rest of the frame)."""
        if not self._noise:
            rng = np.random.default_rng(self.seed + 1)
            shape = (FRAME_SIZE[1], FRAME_SIZE[0], 3)
            self._noise.extend(
                np.round(rng.normal(0, self.noise_sigma, shape)).astype(np.int16) for _ in range(8)
            )
        return self._noise[index % len(self._noise)]


# --- scenes ---


def photo_scene(photo: str, who: dict[int, str], length: int, fps: float = 10.0, seed: int = 0) -> Scene:
    """A still camera on one shared photo, cut to 4:3 around its faces; ``who`` names the oracle's faces
    by index (others are unknown; faces the oracle is unsure of are left out)."""
    image = _photo(photo)
    faces = _reference(photo)
    boxes = np.asarray([f["box"] for f in faces], dtype=np.float32)
    x0, y0, w, h = _four_by_three_around(image.shape, boxes)
    scale = FRAME_SIZE[0] / w
    base = cv2.resize(image[y0 : y0 + h, x0 : x0 + w], FRAME_SIZE, interpolation=cv2.INTER_AREA)
    fixed = tuple(
        Truth(
            f"{photo}#{i}",
            who.get(i, UNKNOWN),
            (
                (np.asarray(face["box"], dtype=np.float32) - np.array([x0, y0, x0, y0], dtype=np.float32))
                * scale
            ),
        )
        for i, face in enumerate(faces)
        if float(face["prob"]) >= 0.99  # type: ignore[arg-type]  # JSON numbers
    )
    return Scene(photo.rsplit(".", 1)[0], base, fixed, {}, length, fps, seed)


def still_pair(length: int, fps: float = 10.0, seed: int = 0) -> Scene:
    """Obama and Biden side by side, still: two enrolled people, faces about 110 px wide."""
    return photo_scene("two_people.jpg", {0: "biden", 1: "obama"}, length, fps, seed)


def still_group(length: int, fps: float = 10.0, seed: int = 0) -> Scene:
    """Obama, Biden and a girl nobody enrolled, still; faces 50–60 px wide, as in a small room."""
    return photo_scene("obama_and_biden.jpg", {0: "biden", 1: "obama"}, length, fps, seed)


def walk_in(length: int, fps: float = 10.0, seed: int = 0, arrive_at: int = 10, steps: int = 15) -> Scene:
    """Rose sits still all along; Obama walks in from the left edge from frame ``arrive_at`` over ``steps``
    frames, then stays."""
    seat = (190.0, 220.0)
    enter = [None] * arrive_at + _line((-60.0, 250.0), seat, steps)
    return _composed(
        "walk_in",
        {"rose_leslie": [(450.0, 230.0)] * length, "obama": _hold(enter, length)},
        length,
        fps,
        seed,
        face_px=80,
    )


def leave(length: int, fps: float = 10.0, seed: int = 0, leave_at: int = 20, steps: int = 10) -> Scene:
    """Kit and Rose sit still; Kit walks out to the left from frame ``leave_at`` and does not come back."""
    start = (200.0, 230.0)
    out = [start] * leave_at + _line(start, (-80.0, 210.0), steps)
    return _composed(
        "leave",
        {"kit_harington": out + [None] * max(0, length - len(out)), "rose_leslie": [(430.0, 240.0)] * length},
        length,
        fps,
        seed,
        face_px=80,
    )


def crossing(length: int, fps: float = 10.0, seed: int = 0, start: int = 5, steps: int = 30) -> Scene:
    """Kit sits still; Biden walks across the room in front of him, hiding his face for a few frames."""
    kit = (320.0, 230.0)
    walk = [None] * start + _line((-60.0, 235.0), (700.0, 235.0), steps)
    return _composed(
        "crossing",
        {"kit_harington": [kit] * length, "biden": walk + [None] * max(0, length - len(walk))},
        length,
        fps,
        seed,
        face_px=80,
    )


def scenes_for_tracking(length: int, fps: float = 10.0) -> list[Scene]:
    """Every scene kind at ``length`` frames: what the tracker comparison and the benchmark run."""
    return [
        still_pair(length, fps),
        still_group(length, fps),
        walk_in(length, fps),
        leave(length, fps),
        crossing(length, fps),
    ]


# --- building blocks ---


def _composed(
    name: str,
    paths: dict[str, list[tuple[float, float] | None]],
    length: int,
    fps: float,
    seed: int,
    face_px: int,
) -> Scene:
    rng = np.random.default_rng(seed)
    base = _background(rng, *FRAME_SIZE)
    actors = {key: Actor(_sprite(key, face_px), tuple(path[:length])) for key, path in paths.items()}
    for key, actor in actors.items():
        if len(actor.path) != length:
            raise ValueError(f"{key}'s path has {len(actor.path)} frames, the scene {length}")
    return Scene(name, base, (), actors, length, fps, seed)


def _line(
    start: tuple[float, float], end: tuple[float, float], steps: int
) -> list[tuple[float, float] | None]:
    """``steps`` positions evenly from ``start`` to ``end`` (both included)."""
    return [
        (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
        for t in np.linspace(0.0, 1.0, steps)
    ]


def _hold(path: list[tuple[float, float] | None], length: int) -> list[tuple[float, float] | None]:
    """``path``, then its last position until the scene ends."""
    return path + [path[-1]] * max(0, length - len(path))


@functools.cache
def _sprite(key: str, face_px: int) -> Sprite:
    """The face ``FACES[key]`` with context, scaled so its face box is ``face_px`` wide."""
    photo, index, who = FACES[key]
    image = _photo(photo)
    x1, y1, x2, y2 = np.asarray(_reference(photo)[index]["box"], dtype=np.float32)
    bw, bh = x2 - x1, y2 - y1
    cx0, cy0 = max(0, int(x1 - _CONTEXT * bw)), max(0, int(y1 - _CONTEXT * bh))
    cx1 = min(image.shape[1], int(x2 + _CONTEXT * bw))
    cy1 = min(image.shape[0], int(y2 + _CONTEXT * bh))
    scale = face_px / bw
    cut = image[cy0:cy1, cx0:cx1]
    size = (max(1, round(cut.shape[1] * scale)), max(1, round(cut.shape[0] * scale)))
    small = cv2.resize(cut, size, interpolation=cv2.INTER_AREA)
    face = (
        np.array([x1, y1, x2, y2], dtype=np.float32) - np.array([cx0, cy0, cx0, cy0], dtype=np.float32)
    ) * scale
    return Sprite(who, small, _soft_mask(small.shape[0], small.shape[1]), face)


def _soft_mask(height: int, width: int) -> np.ndarray:
    """An ellipse filling the cut, faded at its rim, so no hard rectangle edge meets the wall."""
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (width // 2, height // 2), (int(width * 0.45), int(height * 0.47)), 0, 0, 360, 1.0, -1)
    blur = max(3, (min(height, width) // 8) | 1)
    return cv2.GaussianBlur(mask, (blur, blur), 0)[..., None]


def _paste(frame: np.ndarray, sprite: Sprite, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Blend ``sprite`` into ``frame`` with its face centred at ``centre``; returns the face box and the
    frame region the sprite covers fully ([x1, y1, x2, y2], for occlusion)."""
    fx1, fy1, fx2, fy2 = sprite.face
    ox = int(round(centre[0] - (fx1 + fx2) / 2))
    oy = int(round(centre[1] - (fy1 + fy2) / 2))
    h, w = sprite.image.shape[:2]
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(frame.shape[1], ox + w), min(frame.shape[0], oy + h)
    if x1 > x0 and y1 > y0:
        part = sprite.image[y0 - oy : y1 - oy, x0 - ox : x1 - ox].astype(np.float32)
        alpha = sprite.alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        under = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = (alpha * part + (1 - alpha) * under).astype(np.uint8)
    box = sprite.face + np.array([ox, oy, ox, oy], dtype=np.float32)
    # The ellipse's opaque core: the middle 60 % of the cut.
    cover = np.array([ox + 0.2 * w, oy + 0.2 * h, ox + 0.8 * w, oy + 0.8 * h], dtype=np.float32)
    return box.astype(np.float32), cover


def _shown(truth: Truth, covers: list[tuple[str, np.ndarray]]) -> float:
    """The fraction of ``truth``'s face inside the frame and not hidden by a face pasted after it."""
    box = truth.box
    area = float((box[2] - box[0]) * (box[3] - box[1]))
    inside = _overlap(box, np.array([0, 0, *FRAME_SIZE], dtype=np.float32))
    keys = [key for key, _ in covers]
    later = covers[keys.index(truth.key) + 1 :] if truth.key in keys else covers
    hidden = max((_overlap(box, cover) for _, cover in later), default=0.0)
    return max(0.0, inside - hidden) / area if area > 0 else 0.0


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return float(max(0.0, w) * max(0.0, h))


def _four_by_three_around(shape: tuple[int, ...], boxes: np.ndarray) -> tuple[int, int, int, int]:
    """The largest 4:3 window of the photo that is centred on its faces as far as the photo allows."""
    height, width = shape[:2]
    w = min(width, int(height * 4 / 3))
    h = int(w * 3 / 4)
    cx = float((boxes[:, 0].min() + boxes[:, 2].max()) / 2) if len(boxes) else width / 2
    cy = float((boxes[:, 1].min() + boxes[:, 3].max()) / 2) if len(boxes) else height / 2
    x0 = int(np.clip(cx - w / 2, 0, width - w))
    y0 = int(np.clip(cy - h / 2, 0, height - h))
    return x0, y0, w, h


@functools.cache
def _photo(name: str) -> np.ndarray:
    path = _oracle() / "images" / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read shared photo {path}")
    return image


def _reference(photo: str) -> list[dict[str, object]]:
    faces: list[dict[str, object]] = _references()["images"][photo]["faces"]
    return faces


@functools.cache
def _references() -> dict[str, dict[str, dict[str, list[dict[str, object]]]]]:
    loaded: dict[str, dict[str, dict[str, list[dict[str, object]]]]] = json.loads(
        (_oracle() / "reference.json").read_text()
    )
    return loaded


def _oracle() -> Path:
    return shared_dir() / ORACLE


# --- the people of the scenes, enrolled ---


def shared_people() -> list[str]:
    """The people of ``datasets/facebank``, one folder each: who the scenes' enrolled faces are."""
    return sorted(p.name for p in (shared_dir() / "datasets" / "facebank").iterdir() if p.is_dir())


def enrol_shared_people(
    pipe: FacePipeline, facebank: Facebank, names: Collection[str] | None = None
) -> dict[str, int]:
    """Enrol the ``names`` of ``shared_people`` (None: all) as enrolment does: the largest face of each
    of their photos, embedded with its mirror image. Returns their ids by name."""
    ids: dict[str, int] = {}
    for name in sorted(shared_people() if names is None else names):
        person_dir = shared_dir() / "datasets" / "facebank" / name
        person = facebank.people.create(name, external_id=f"shared-{name}")
        ids[name] = person.id
        for photo in sorted(person_dir.iterdir()):
            data = photo.read_bytes()
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot decode the enrolment photo {photo}")
            found = pipe.detect([image])[0]
            if len(found) == 0:
                raise ValueError(f"no face found in the enrolment photo {photo}")
            largest = int(
                np.argmax((found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1]))
            )
            marks = found.landmarks[largest : largest + 1]
            vector = pipe.embed(image, marks, flip=True)[0]
            facebank.faces.add(
                person.id,
                data,
                "image/jpeg",
                image.shape[1],
                image.shape[0],
                found.boxes[largest],
                marks[0].reshape(-1),
                vector,
                pipe.embedder.name,
                pipe.embedder.version,
            )
    return ids


# --- scoring tracks against the truth ---

# A track stands for a true face whose box it overlaps at least this much.
TRUTH_IOU = 0.3


def match_truth(truth: dict[str, np.ndarray], tracks: list[tuple[int, np.ndarray]]) -> dict[str, int]:
    """Which track stands for each true face (``truth``: key → box; ``tracks``: (id, box)), best overlaps
    first, each track for one face at most; faces no track overlaps by ``TRUTH_IOU`` are left out."""
    pairs = []
    for key, box in truth.items():
        for track_id, track_box in tracks:
            overlap = box_iou(np.asarray(box), np.asarray(track_box))
            if overlap >= TRUTH_IOU:
                pairs.append((overlap, key, track_id))
    matched: dict[str, int] = {}
    used: set[int] = set()
    for _, key, track_id in sorted(pairs, reverse=True):
        if key not in matched and track_id not in used:
            matched[key] = track_id
            used.add(track_id)
    return matched


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, float(w)) * max(0.0, float(h))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0
