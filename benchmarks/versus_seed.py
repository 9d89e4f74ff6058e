"""Part 2: rollcall against the seed's way (``benchmarks.seed_way``), same MTCNN weights, same process.

Rollcall runs twice over: at its defaults (minimum face 20 px of the frame), and at equal work with
the seed (minimum face 40 px of the frame, the seed's 20 px of the halved frame), for the headline
facebank size. The seed runs two ways: faithfully, with its own embedder (MobileFaceNet, 512-D, one face
per forward, autograd on: ``speedup``), and with rollcall's embedder one face per forward
(``speedup_same_embedder``: the way of working alone, and the one whose names are checked).

For every frame size and facebank size, each photo is run the three ways back to back after a warm-up,
rotating which goes first, so all see the same machine state. A speedup is the median over those
back-to-back rounds of seed time / rollcall time: robust to a shared machine's busy spells, which hit
a whole round alike. The ratio of the medians is reported beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.engine import engine_of
from benchmarks.frames import Frame
from benchmarks.inprocess import timed_frame
from benchmarks.networks import NetworkClock
from benchmarks.report import headline_identities
from benchmarks.seed_way import (
    SEED_FACTOR,
    SEED_MIN_FACE,
    SEED_SCALE,
    SEED_THRESHOLDS,
    SeedEmbedding,
    SeedFacebank,
    SeedWeights,
    seed_attendance,
)
from benchmarks.stats import ratio, summarize
from ml.pipeline import FacePipeline
from recognition.gallery import Gallery

log = logging.getLogger("benchmarks.seed")


@dataclass(frozen=True)
class SeedSide:
    """One way the seed is run: how it embeds, and its facebank (rows of that embedding's dimension)."""

    embedding: SeedEmbedding
    facebank: SeedFacebank


def compare(
    pipe: FacePipeline,
    frames: Sequence[Frame],
    gallery: Gallery,
    seeds: Mapping[str, SeedSide],
    weights: SeedWeights,
    threshold: float,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """rollcall and each seed side on every frame, rotating the order; per-side distributions, stage
    medians, the speedups and their ceilings (seed time / the time rollcall spent inside its networks,
    ``benchmarks.networks``). Keys of the ``same_embedder`` side carry that suffix."""
    identities = gallery.person_count
    networks = NetworkClock(pipe)

    def rollcall_once(frame: Frame) -> tuple[float, dict[str, float], set[int]]:
        with networks.measuring():
            timing, answers = timed_frame(pipe, frame.image, {identities: gallery}, threshold)
        stages = {
            "detect": timing.detect,
            "align_embed": timing.align_embed,
            "match": timing.match[identities],
            "networks": networks.ms,  # inside detect and align_embed, not a stage of its own
        }
        return timing.attendance(identities), stages, {p.person_id for p in answers[identities].present}

    def seed_once(side: SeedSide, frame: Frame) -> tuple[float, dict[str, float], set[int]]:
        answer = seed_attendance(frame.image, weights, side.embedding, side.facebank, threshold)
        return answer.total, answer.ms, set(answer.present)

    names = ["rollcall", *seeds]

    def run_one(name: str, frame: Frame) -> tuple[float, dict[str, float], set[int]]:
        return rollcall_once(frame) if name == "rollcall" else seed_once(seeds[name], frame)

    for _ in range(warmup):
        for frame in frames:
            for name in names:
                run_one(name, frame)
    totals: dict[str, list[float]] = {name: [] for name in names}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    ratios: dict[str, list[float]] = {name: [] for name in seeds}
    ceilings: dict[str, list[float]] = {name: [] for name in seeds}
    agree = 0
    for r in range(repeats):
        for i, frame in enumerate(frames):
            shift = (r + i) % len(names)
            measured = {name: run_one(name, frame) for name in names[shift:] + names[:shift]}
            ours, our_stages, our_named = measured["rollcall"]
            for name, (total, by_stage, _) in measured.items():
                totals[name].append(total)
                for stage, ms in by_stage.items():
                    stages[name].setdefault(stage, []).append(ms)
                if name != "rollcall":
                    ratios[name].append(total / ours)
                    ceilings[name].append(total / max(our_stages["networks"], 1e-3))
            if "same_embedder" in measured:
                agree += measured["same_embedder"][2] == our_named
    ours_summary = summarize(totals["rollcall"])
    result: dict[str, Any] = {
        "identities": identities,
        "samples": len(totals["rollcall"]),
        "rollcall_ms": ours_summary.to_json(),
        "rollcall_stage_median_ms": {k: round(summarize(v).median, 3) for k, v in stages["rollcall"].items()},
    }
    for name in seeds:
        suffix = "" if name == "faithful" else f"_{name}"
        seed_summary = summarize(totals[name])
        result[f"seed_ms{suffix}"] = seed_summary.to_json()
        result[f"seed_stage_median_ms{suffix}"] = {
            k: round(summarize(v).median, 3) for k, v in stages[name].items()
        }
        result[f"speedup{suffix}"] = round(summarize(ratios[name]).median, 3)
        result[f"speedup_of_medians{suffix}"] = ratio(seed_summary.median, ours_summary.median)
        result[f"speedup_ceiling{suffix}"] = round(summarize(ceilings[name]).median, 3)
    if "same_embedder" in seeds:
        result["same_people_named"] = f"{agree}/{len(totals['rollcall'])}"
    return result


def run(
    pipe: FacePipeline,
    equal_work: FacePipeline,
    frames_by_size: Mapping[str, Sequence[Frame]],
    galleries: Mapping[int, Gallery],
    seed_sides: Mapping[int, Mapping[str, SeedSide]],
    weights: SeedWeights,
    threshold: float,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Part 2's JSON: per frame size, one comparison per facebank size, and the equal-work comparison.
    ``seed_sides``: per facebank size, the seed's ways (``faithful``, ``same_embedder``)."""
    sizes: dict[str, Any] = {}
    equal: dict[str, Any] = {}
    headline = headline_identities({"identities": sorted(seed_sides)})
    for size, frames in frames_by_size.items():
        sizes[size] = {}
        for identities, sides in seed_sides.items():
            log.info(
                "seed: %s, %d identities, %d photos x %d repeats", size, identities, len(frames), repeats
            )
            result = compare(pipe, frames, galleries[identities], sides, weights, threshold, repeats, warmup)
            sizes[size][str(identities)] = result
            log.info(
                "seed: %s, %d identities: seed %.1f ms, rollcall %.1f ms, speedup %.2fx "
                "(same embedder %.2fx)",
                size,
                identities,
                result["seed_ms"]["median"],
                result["rollcall_ms"]["median"],
                result["speedup"],
                result["speedup_same_embedder"],
            )
        result = compare(
            equal_work, frames, galleries[headline], seed_sides[headline], weights, threshold, repeats, warmup
        )
        equal[size] = {str(headline): result}
        log.info(
            "seed: %s, %d identities, equal work (rollcall min face %d px): seed %.1f ms, rollcall %.1f ms, "
            "speedup %.2fx (same embedder %.2fx)",
            size,
            headline,
            equal_work.params.min_face_size,
            result["seed_ms"]["median"],
            result["rollcall_ms"]["median"],
            result["speedup"],
            result["speedup_same_embedder"],
        )
    return {
        "repeats": repeats,
        "warmup": warmup,
        "identities": sorted(seed_sides),
        "sizes": sizes,
        "equal_work": {
            "rollcall_min_face_size": equal_work.params.min_face_size,
            "seed": {
                "scale": SEED_SCALE,
                "min_face_size": SEED_MIN_FACE,
                "thresholds": list(SEED_THRESHOLDS),
                "factor": SEED_FACTOR,
                "embedder": "MobileFaceNet (112x112, 512-D, randomly initialised), one face per forward, "
                "autograd on; *_same_embedder: rollcall's embedder one face per forward",
            },
            "sizes": equal,
        },
        "engine": engine_of(pipe.describe()),
    }
