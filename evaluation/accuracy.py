"""Verification accuracy of rollcall's full face pipeline (MTCNN → alignment → embedding) on LFW pairs.

    python -m evaluation lfw --pairs pairs.txt --images lfw/ [--embedder NAME] [--flip] [--json]
    python -m evaluation build-pairs --shared ../shared --out /tmp/lfw-substitute

Each photo is detected, aligned and embedded once, whatever number of pairs it appears in. Two
conventions, both reported in the output:

- faces below the face-probability floor (``ROLLCALL_MIN_FACE_PROB``) are not faces;
- several faces in a photo: the largest, most central one is used (facenet's LFW alignment rule:
  box area minus twice the squared distance of the box centre from the photo centre), among the faces
  at least half as tall as the largest (so a small box near the centre of a large photo never wins over
  the large face the photo is of);
- no face in a photo: every pair using it counts as wrong at every threshold (scored −2 if the pair is
  the same person, +2 if not: outside the cosine range), rather than guessing a centre crop, so the
  figures never flatter the detector.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

import errors
from evaluation.lfw import ImageRef, PairsFile, read_pairs
from evaluation.lfw_substitute import build_substitute
from evaluation.verification import accuracy, best_threshold, cross_validated_accuracy, roc_auc
from ml.align import align_faces, flip_chips
from ml.mtcnn import Detections, MTCNNParams
from ml.pipeline import FacePipeline, PipelineConfig, embedder_names, load_pipeline
from ml.weights import ModelStore

log = logging.getLogger(__name__)

UNDETECTED_SAME_SCORE = -2.0
UNDETECTED_DIFFERENT_SCORE = 2.0
IMAGES_PER_BATCH = 16  # photos per detector call: bounds memory when photos are large
LFW_VIEW2_PAIRS = 6000


@dataclass(frozen=True)
class ImageEmbeddings:
    """Each photo's embedding (None when no face was found), plain and, with ``flip``, mirror-averaged."""

    plain: dict[ImageRef, np.ndarray | None]
    flipped: dict[ImageRef, np.ndarray | None] | None
    several_faces: int
    detect_seconds: float
    embed_seconds: float

    def undetected(self) -> list[ImageRef]:
        return sorted(ref for ref, vector in self.plain.items() if vector is None)


@dataclass(frozen=True)
class Metrics:
    """Verification figures of one set of pair scores."""

    accuracy: float
    false_accepts: int
    false_rejects: int
    best_threshold_accuracy: float
    best_threshold: float
    fold_thresholds: tuple[float, ...]
    auc: float


@dataclass(frozen=True)
class Evaluation:
    """Everything ``python -m evaluation lfw`` reports; ``metrics`` are with flip averaging when ``flip``."""

    embedder: str
    embedder_version: str
    threshold: float
    threshold_source: str
    pairs: int
    same_pairs: int
    folds: int
    best_threshold_protocol: str
    images: int
    undetected: int
    undetected_pairs: int
    undetected_images: tuple[str, ...]
    undetected_policy: str
    several_faces: int
    several_faces_policy: str
    flip: bool
    metrics: Metrics
    without_flip: Metrics | None
    detect_seconds: float
    embed_seconds: float

    def to_json(self) -> dict[str, object]:
        """Flat JSON: the headline metrics at the top level, the no-flip ones under ``without_flip``."""
        record = asdict(self)
        record.update(record.pop("metrics"))
        return record


def choose_face(detections: Detections, height: int, width: int) -> int:
    """Index of the largest, most central face (facenet's align_dataset_mtcnn rule for LFW), among the
    faces at least half the largest one's side: facenet's rule was made for LFW's 250-pixel crops, where
    the person sits in the centre; on a large photo its centre penalty alone picks a tiny central box."""
    boxes = detections.boxes.astype(np.float64)
    side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    area = side**2
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2 - width / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2 - height / 2
    score = area - 2.0 * (centre_x**2 + centre_y**2)
    return int(np.argmax(np.where(side >= 0.5 * side.max(), score, -np.inf)))


def read_image(path: Path) -> np.ndarray:
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise errors.NotAnImage(f"cannot decode {path} as an image")
    return frame


def embed_images(
    pipeline: FacePipeline, refs: Sequence[ImageRef], images_dir: Path, flip: bool
) -> ImageEmbeddings:
    """Detect, choose one face, align and embed every photo, a batch of photos at a time."""
    embedder = pipeline.embedder
    plain: dict[ImageRef, np.ndarray | None] = {}
    flipped: dict[ImageRef, np.ndarray | None] = {}
    several_faces = 0
    detect_seconds = embed_seconds = 0.0
    for start in range(0, len(refs), IMAGES_PER_BATCH):
        batch = refs[start : start + IMAGES_PER_BATCH]
        frames = [read_image(ref.path(images_dir)) for ref in batch]
        started = time.perf_counter()
        found = pipeline.detect(frames)
        detect_seconds += time.perf_counter() - started
        started = time.perf_counter()
        chips, with_face = [], []
        for ref, frame, detections in zip(batch, frames, found, strict=True):
            if len(detections) == 0:
                plain[ref] = flipped[ref] = None
                continue
            several_faces += len(detections) > 1
            face = choose_face(detections, *frame.shape[:2])
            chips.append(
                align_faces(
                    frame, detections.landmarks[face : face + 1], embedder.chip_size, embedder.template
                )
            )
            with_face.append(ref)
        if chips:
            batch_chips = np.concatenate(chips)
            vectors = embedder.embed(batch_chips)
            plain.update(zip(with_face, vectors, strict=True))
            if flip:
                averaged = vectors + embedder.embed(flip_chips(batch_chips))
                averaged /= np.linalg.norm(averaged, axis=1, keepdims=True)
                flipped.update(zip(with_face, averaged, strict=True))
        embed_seconds += time.perf_counter() - started
        log.info("embedded %d of %d photos", min(start + IMAGES_PER_BATCH, len(refs)), len(refs))
    return ImageEmbeddings(plain, flipped if flip else None, several_faces, detect_seconds, embed_seconds)


def pair_scores(pairs_file: PairsFile, vectors: dict[ImageRef, np.ndarray | None]) -> np.ndarray:
    """Cosine similarity per pair; a pair with an undetected photo gets the score that makes it wrong."""
    scores = np.empty(len(pairs_file.pairs), dtype=np.float64)
    for i, pair in enumerate(pairs_file.pairs):
        left, right = vectors[pair.left], vectors[pair.right]
        if left is None or right is None:
            scores[i] = UNDETECTED_SAME_SCORE if pair.same else UNDETECTED_DIFFERENT_SCORE
        else:
            scores[i] = float(np.dot(left, right))
    return scores


def verification_metrics(
    scores: np.ndarray, same: np.ndarray, folds: np.ndarray, threshold: float
) -> Metrics:
    """Accuracy at ``threshold`` and at the best threshold (cross-validated when there are several folds)."""
    accepted = scores >= threshold
    overall = best_threshold(scores, same)
    if len(np.unique(folds)) > 1:
        cv = cross_validated_accuracy(scores, same, folds)
        best_accuracy, fold_thresholds = cv.mean, cv.thresholds
    else:
        best_accuracy, fold_thresholds = overall.accuracy, ()
    return Metrics(
        accuracy=accuracy(scores, same, threshold),
        false_accepts=int(np.sum(accepted & ~same)),
        false_rejects=int(np.sum(~accepted & same)),
        best_threshold_accuracy=best_accuracy,
        best_threshold=overall.threshold,
        fold_thresholds=fold_thresholds,
        auc=roc_auc(scores, same),
    )


def evaluate(
    pipeline: FacePipeline,
    pairs_file: PairsFile,
    images_dir: Path,
    threshold: float,
    threshold_source: str,
    flip: bool = False,
) -> Evaluation:
    """Run the pipeline over every photo of the pairs and score them."""
    refs = pairs_file.images()
    missing = [ref.path(images_dir) for ref in refs if not ref.path(images_dir).is_file()]
    if missing:
        shown = ", ".join(str(path) for path in missing[:3])
        raise errors.InvalidInput(
            f"{len(missing)} of {len(refs)} photos of the pairs are missing, e.g. {shown}"
        )
    embedded = embed_images(pipeline, refs, images_dir, flip)
    same = np.array([pair.same for pair in pairs_file.pairs])
    folds = np.array([pair.fold for pair in pairs_file.pairs])
    plain = verification_metrics(pair_scores(pairs_file, embedded.plain), same, folds, threshold)
    with_flip = None
    if embedded.flipped is not None:
        with_flip = verification_metrics(pair_scores(pairs_file, embedded.flipped), same, folds, threshold)
    undetected = embedded.undetected()
    undetected_set = set(undetected)
    return Evaluation(
        embedder=pipeline.embedder.name,
        embedder_version=pipeline.embedder.version,
        threshold=threshold,
        threshold_source=threshold_source,
        pairs=len(pairs_file.pairs),
        same_pairs=int(same.sum()),
        folds=pairs_file.folds,
        best_threshold_protocol=(
            f"{pairs_file.folds}-fold: threshold fitted on the other folds, accuracy averaged"
            if pairs_file.folds > 1
            else "one fold: threshold fitted and measured on the same pairs, so optimistic"
        ),
        images=len(refs),
        undetected=len(undetected),
        undetected_pairs=sum(p.left in undetected_set or p.right in undetected_set for p in pairs_file.pairs),
        undetected_images=tuple(str(ref.path(images_dir).relative_to(images_dir)) for ref in undetected),
        undetected_policy="every pair with a photo where no face was found counts as wrong",
        several_faces=embedded.several_faces,
        several_faces_policy="the largest, most central face is used (among faces at least half the "
        "largest's side, at or above the face-probability floor)",
        flip=flip,
        metrics=with_flip if with_flip is not None else plain,
        without_flip=plain if with_flip is not None else None,
        detect_seconds=embedded.detect_seconds,
        embed_seconds=embedded.embed_seconds,
    )


def format_report(result: Evaluation) -> str:
    """The human-readable summary printed before the optional JSON line."""
    different = result.pairs - result.same_pairs
    lines = [
        f"{result.pairs} pairs ({result.same_pairs} same person, {different} different) "
        f"over {result.images} photos, {result.folds} fold(s)",
        f"embedder {result.embedder} ({result.embedder_version}), "
        f"flip averaging {'on' if result.flip else 'off'}",
        f"no face found in {result.undetected} photo(s), {result.undetected_pairs} pair(s): "
        f"{result.undetected_policy}",
        f"several faces in {result.several_faces} photo(s): {result.several_faces_policy}",
    ]
    variants = [("", result.metrics)]
    if result.without_flip is not None:
        variants = [("with flip: ", result.metrics), ("without flip: ", result.without_flip)]
    for label, m in variants:
        lines += [
            f"{label}accuracy {m.accuracy:.4f} at threshold {result.threshold:.4f} "
            f"({result.threshold_source}): {m.false_accepts} false accepts, {m.false_rejects} false rejects",
            f"{label}best-threshold accuracy {m.best_threshold_accuracy:.4f} "
            f"({result.best_threshold_protocol}); best threshold on all pairs {m.best_threshold:.4f}",
            f"{label}ROC AUC {m.auc:.4f}",
        ]
    lines.append(
        f"detection {result.detect_seconds:.1f} s, alignment + embedding {result.embed_seconds:.1f} s"
    )
    if result.pairs < LFW_VIEW2_PAIRS:
        lines.append(
            f"note: only {result.pairs} pairs (LFW has {LFW_VIEW2_PAIRS}): a rough figure, not an LFW score"
        )
    return "\n".join(lines)


def _run_lfw(args: argparse.Namespace) -> int:
    from settings import get_settings

    settings = get_settings()
    pairs_file = read_pairs(args.pairs)
    if not args.images.is_dir():
        raise errors.InvalidInput(f"image folder {args.images} does not exist")
    config = PipelineConfig(
        model_dir=args.model_dir or settings.model_dir,
        embedder=args.embedder,
        device=args.device or settings.device,
        mtcnn=MTCNNParams(min_face_size=settings.min_face_size),
        engine=settings.engine,
        min_face_prob=settings.min_face_prob,
        max_detect_side=settings.max_detect_side,
    )
    # The embedder's weights are checked first: a missing model is named before any detector loads.
    ModelStore(config.model_dir).path(config.embedder)
    pipeline = load_pipeline(config)
    if args.threshold is not None:
        threshold, source = args.threshold, "--threshold"
    elif settings.match_threshold is not None:
        threshold, source = settings.match_threshold, "ROLLCALL_MATCH_THRESHOLD"
    else:
        threshold, source = pipeline.embedder.default_threshold, "embedder default"
    result = evaluate(pipeline, pairs_file, args.images, threshold, source, flip=args.flip)
    print(format_report(result))
    if args.json:
        print(json.dumps(result.to_json()))
    return 0


def _run_build_pairs(args: argparse.Namespace) -> int:
    substitute = build_substitute(args.shared, args.out)
    print(substitute.describe(), end="")
    for duplicate in substitute.duplicates_skipped:
        print(f"skipped {duplicate}")
    print(f"pairs: {substitute.pairs_path}\nimages: {substitute.images_dir}")
    print(f"run: python -m evaluation lfw --pairs {substitute.pairs_path} --images {substitute.images_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lfw = commands.add_parser("lfw", help="verification accuracy on a pairs file in LFW's format")
    lfw.add_argument("--pairs", type=Path, required=True, help="pairs file (header 'N' or 'folds N')")
    lfw.add_argument("--images", type=Path, required=True, help="folder in LFW's layout: NAME/NAME_0001.jpg")
    lfw.add_argument("--embedder", choices=embedder_names(), default="dlib_resnet_v1")
    lfw.add_argument(
        "--threshold", type=float, help="cosine threshold (default: configured, else embedder's)"
    )
    lfw.add_argument(
        "--flip", action="store_true", help="also average each face's embedding with its mirror's"
    )
    lfw.add_argument("--device", help="torch device (default: ROLLCALL_DEVICE)")
    lfw.add_argument("--model-dir", type=Path, help="weights cache (default: ROLLCALL_MODEL_DIR)")
    lfw.add_argument("--json", action="store_true", help="end with one line of JSON holding every figure")
    build = commands.add_parser(
        "build-pairs", help="build a small LFW-format substitute from the shared photos"
    )
    build.add_argument("--shared", type=Path, required=True, help="rollcall's shared data folder")
    build.add_argument("--out", type=Path, required=True, help="new or empty folder outside the repository")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return _run_lfw(args) if args.command == "lfw" else _run_build_pairs(args)
    except errors.RollcallError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
