"""``ROLLCALL_LIVE_PROCESSOR``: the factory a reader makes each camera's frame processor with."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from live.factory import ReaderContext, load_factory
from live.processing import EndedTrack, FrameProcessor, ProcessedFrame
from settings import Settings


class Sizes:
    """A processor that reports each frame's size (what a factory returns: a ``FrameProcessor``)."""

    def __init__(self, camera: str) -> None:
        self.camera = camera

    def process(self, image: np.ndarray, ts: float) -> ProcessedFrame:
        return ProcessedFrame({"camera": self.camera, "ts": ts, "frame_size": list(image.shape[1::-1])})

    def close(self) -> list[EndedTrack]:
        """Nothing held: no tracks end."""
        return []


def sizes(camera: str, context: ReaderContext) -> FrameProcessor:
    assert context.settings.live_fps > 0
    return Sizes(camera)


def test_the_setting_names_a_factory_that_makes_a_processor_per_camera() -> None:
    settings = Settings(live_processor="tests.live.test_factory:sizes")
    factory = load_factory(settings.live_processor)
    assert factory is not None
    context = ReaderContext(settings, pipeline=lambda: None, snapshot=lambda: None)  # type: ignore[arg-type, return-value]
    processed = factory("room12", context).process(np.zeros((480, 640, 3), np.uint8), 1.5)
    assert processed.event == {"camera": "room12", "ts": 1.5, "frame_size": [640, 480]}


def test_no_factory_means_frames_only() -> None:
    assert load_factory(Settings().live_processor) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [("tests.live.nowhere:make", "cannot be imported"), ("tests.live.test_factory:missing", "no function")],
)
def test_a_factory_that_cannot_be_loaded_is_named(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"ROLLCALL_LIVE_PROCESSOR: .*{message}"):
        load_factory(spec)


def test_a_malformed_factory_name_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="live_processor"):
        Settings(live_processor="not a module path")
