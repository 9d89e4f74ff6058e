"""Batching across jobs in one process (``recognition.batching``), with the real pipeline and real threads.

Each "job" is a thread inside the front's ``running_job()``, as a Celery ``threads`` pool runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from errors import InvalidInput
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from recognition import batching
from settings import get_settings
from tests.conftest import wait_until
from tests.shared_data import shared_dir

PHOTOS = "oracles/mtcnn_facenet_pytorch/images"


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return load_pipeline(PipelineConfig(model_dir=get_settings().model_dir, device="cpu"))


def photo(name: str) -> np.ndarray:
    image = cv2.imread(str(shared_dir() / PHOTOS / name), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def run_as_jobs(
    front: batching.BatchedPipeline, work: list[Callable[[], Any]]
) -> tuple[list[Any], list[dict[str, int]]]:
    """Each callable run as one job in its own thread, all at once: answers (or errors), batch sizes."""
    answers: list[Any] = [None] * len(work)
    sizes: list[dict[str, int]] = [{} for _ in work]
    start = threading.Barrier(len(work))

    def job(i: int) -> None:
        with front.running_job() as running:
            start.wait()
            try:
                answers[i] = work[i]()
            except Exception as exc:  # the test inspects it
                answers[i] = exc
        sizes[i] = running.batch_sizes

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers, sizes


def test_frames_of_concurrent_jobs_are_detected_and_embedded_in_one_batch_with_each_jobs_own_answer(
    pipe: FacePipeline,
) -> None:
    front = batching.BatchedPipeline(pipe, max_size=4, wait_s=5.0)
    frames = [photo(n) for n in ("two_people.jpg", "obama_small.jpg", "multiface.jpg", "kate_siegel.jpg")]

    def attendance(frame: np.ndarray) -> Callable[[], Any]:
        def run() -> tuple[Any, np.ndarray]:
            found = front.detect(frame)
            return found, front.embed(frame, found.landmarks, False)

        return run

    answers, sizes = run_as_jobs(front, [attendance(f) for f in frames])

    assert sizes == [{"detect": 4, "embed": 4}] * 4
    for frame, (found, vectors) in zip(frames, answers, strict=True):
        alone = pipe.detect([frame])[0]
        np.testing.assert_allclose(found.boxes, alone.boxes, atol=1e-3)
        assert len(found) > 0
        np.testing.assert_allclose(vectors, pipe.embed(frame, alone.landmarks), atol=1e-4)


def test_a_bad_frame_in_a_batch_fails_only_its_own_job(pipe: FacePipeline) -> None:
    front = batching.BatchedPipeline(pipe, max_size=3, wait_s=5.0)
    good = photo("obama_small.jpg")
    bad = good.astype(np.float32)  # not a uint8 frame: the detector refuses it
    answers, sizes = run_as_jobs(
        front, [lambda: front.detect(good), lambda: front.detect(bad), lambda: front.detect(good)]
    )

    assert isinstance(answers[1], InvalidInput)
    assert [len(answers[0]), len(answers[2])] == [1, 1]
    assert all(s == {"detect": 3} for s in sizes)


def test_a_lone_job_runs_at_once_without_waiting_for_the_batch_to_fill(pipe: FacePipeline) -> None:
    # The wait is an hour: only "no other running job can join" lets this batch start.
    front = batching.BatchedPipeline(pipe, max_size=8, wait_s=3600.0)
    answers, sizes = run_as_jobs(front, [lambda: front.detect(photo("obama_small.jpg"))])
    assert len(answers[0]) == 1 and sizes == [{"detect": 1}]


def test_a_job_that_ends_before_reaching_the_stage_releases_the_waiting_batch(pipe: FacePipeline) -> None:
    front = batching.BatchedPipeline(pipe, max_size=2, wait_s=3600.0)
    frame = photo("obama_small.jpg")

    def detects() -> Any:
        return front.detect(frame)

    def fails_before_detection() -> Any:
        # Ends only once the other job leads an open batch that waits for this one.
        wait_until(lambda: front.detector._open is not None, 10, "the other job's batch to open")
        raise InvalidInput("the camera sent no image")

    answers, _ = run_as_jobs(front, [detects, fails_before_detection])
    assert len(answers[0]) == 1
    assert isinstance(answers[1], InvalidInput)


def test_with_batching_off_each_call_goes_straight_to_the_pipeline(pipe: FacePipeline) -> None:
    """Batch size 1, the default: the same front answers as the pipeline itself, and records no batch."""
    front = batching.BatchedPipeline(pipe)
    frame = photo("two_people.jpg")
    answers, sizes = run_as_jobs(front, [lambda: front.detect(frame)])
    alone = pipe.detect([frame])[0]
    np.testing.assert_array_equal(answers[0].boxes, alone.boxes)
    np.testing.assert_array_equal(
        front.embed(frame, alone.landmarks, True), pipe.embed(frame, alone.landmarks, True)
    )
    assert sizes == [{}] and front.detector._open is None
