"""Part 2: rollcall against the seed's way (``benchmarks.seed_way``), same weights, same process.

Rollcall runs twice over: at its defaults (minimum face 20 px of the frame), and at equal work with
the seed (minimum face 40 px of the frame, the seed's 20 px of the halved frame), for the headline
facebank size.

For every frame size and facebank size, each photo is run both ways after a warm-up, alternating which
side goes first (ABBA order), so both see the same machine state. The speedup is the median over
those back-to-back pairs of seed time / rollcall time: robust to a shared machine's busy spells,
which hit both halves of a pair alike. The ratio of the two sides' medians is reported beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
    SeedFacebank,
    SeedWeights,
    seed_attendance,
)
from benchmarks.stats import ratio, summarize
from ml.pipeline import FacePipeline
from recognition.gallery import Gallery

log = logging.getLogger("benchmarks.seed")


def compare(
    pipe: FacePipeline,
    frames: Sequence[Frame],
    gallery: Gallery,
    seed_bank: SeedFacebank,
    weights: SeedWeights,
    threshold: float,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Both ways on every frame, alternating; per-side distributions, stage medians, the speedup, and its
    ceiling (seed time / the time rollcall spent inside its networks, ``benchmarks.networks``)."""
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

    def seed_once(frame: Frame) -> tuple[float, dict[str, float], set[int]]:
        answer = seed_attendance(frame.image, weights, pipe.embedder, seed_bank, threshold)
        return answer.total, answer.ms, set(answer.present)

    for _ in range(warmup):
        for frame in frames:
            seed_once(frame)
            rollcall_once(frame)
    seed_ms: list[float] = []
    ours_ms: list[float] = []
    pair_ratios: list[float] = []
    ceiling_ratios: list[float] = []
    seed_stages: dict[str, list[float]] = {}
    our_stages: dict[str, list[float]] = {}
    agree = 0
    for r in range(repeats):
        for i, frame in enumerate(frames):
            if (r + i) % 2 == 0:
                seed_total, seed_stage, seed_named = seed_once(frame)
                our_total, our_stage, our_named = rollcall_once(frame)
            else:
                our_total, our_stage, our_named = rollcall_once(frame)
                seed_total, seed_stage, seed_named = seed_once(frame)
            seed_ms.append(seed_total)
            ours_ms.append(our_total)
            pair_ratios.append(seed_total / our_total)
            ceiling_ratios.append(seed_total / max(our_stage["networks"], 1e-3))
            agree += seed_named == our_named
            for stages, into in ((seed_stage, seed_stages), (our_stage, our_stages)):
                for name, ms in stages.items():
                    into.setdefault(name, []).append(ms)
    seed_summary, our_summary = summarize(seed_ms), summarize(ours_ms)
    return {
        "identities": identities,
        "samples": len(seed_ms),
        "seed_ms": seed_summary.to_json(),
        "rollcall_ms": our_summary.to_json(),
        "seed_stage_median_ms": {k: round(summarize(v).median, 3) for k, v in seed_stages.items()},
        "rollcall_stage_median_ms": {k: round(summarize(v).median, 3) for k, v in our_stages.items()},
        "speedup": round(summarize(pair_ratios).median, 3),
        "speedup_of_medians": ratio(seed_summary.median, our_summary.median),
        "speedup_ceiling": round(summarize(ceiling_ratios).median, 3),
        "same_people_named": f"{agree}/{len(seed_ms)}",
    }


def run(
    pipe: FacePipeline,
    equal_work: FacePipeline,
    frames_by_size: Mapping[str, Sequence[Frame]],
    galleries: Mapping[int, Gallery],
    seed_banks: Mapping[int, SeedFacebank],
    weights: SeedWeights,
    threshold: float,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Part 2's JSON: per frame size, one comparison per facebank size, and the equal-work comparison."""
    sizes: dict[str, Any] = {}
    equal: dict[str, Any] = {}
    headline = headline_identities({"identities": sorted(seed_banks)})
    for size, frames in frames_by_size.items():
        sizes[size] = {}
        for identities, seed_bank in seed_banks.items():
            log.info(
                "seed: %s, %d identities, %d photos x %d repeats", size, identities, len(frames), repeats
            )
            result = compare(
                pipe, frames, galleries[identities], seed_bank, weights, threshold, repeats, warmup
            )
            sizes[size][str(identities)] = result
            log.info(
                "seed: %s, %d identities: seed %.1f ms, rollcall %.1f ms, speedup %.2fx",
                size,
                identities,
                result["seed_ms"]["median"],
                result["rollcall_ms"]["median"],
                result["speedup"],
            )
        result = compare(
            equal_work, frames, galleries[headline], seed_banks[headline], weights, threshold, repeats, warmup
        )
        equal[size] = {str(headline): result}
        log.info(
            "seed: %s, %d identities, equal work (rollcall min face %d px): seed %.1f ms, rollcall %.1f ms, "
            "speedup %.2fx",
            size,
            headline,
            equal_work.params.min_face_size,
            result["seed_ms"]["median"],
            result["rollcall_ms"]["median"],
            result["speedup"],
        )
    return {
        "repeats": repeats,
        "warmup": warmup,
        "identities": sorted(seed_banks),
        "sizes": sizes,
        "equal_work": {
            "rollcall_min_face_size": equal_work.params.min_face_size,
            "seed": {
                "scale": SEED_SCALE,
                "min_face_size": SEED_MIN_FACE,
                "thresholds": list(SEED_THRESHOLDS),
                "factor": SEED_FACTOR,
            },
            "sizes": equal,
        },
        "engine": engine_of(pipe.describe()),
    }
