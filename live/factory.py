"""Where a reader's frame processors come from: ``ROLLCALL_LIVE_PROCESSOR`` names a factory.

A factory is a function ``(camera, context) -> FrameProcessor`` given as ``module:function``; the reader
calls it once per camera it starts reading, on its processing thread. ``context`` hands it what the
reader process has loaded once (the detector and embedder, as a model worker loads them) and the
facebank at its newest revision. Without a factory a reader shares frames and processes none.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from live.processing import FrameProcessor

if TYPE_CHECKING:
    from ml.pipeline import FacePipeline
    from recognition.snapshot import FacebankSnapshot
    from settings import Settings


@dataclass(frozen=True)
class ReaderContext:
    """What a processor factory is given."""

    settings: Settings
    pipeline: Callable[[], FacePipeline]  # the process's loaded detector and embedder (loaded on first call)
    snapshot: Callable[[], FacebankSnapshot]  # the gallery, names and threshold at the newest revision


ProcessorFactory = Callable[[str, ReaderContext], FrameProcessor]


def load_factory(spec: str) -> ProcessorFactory | None:
    """The factory ``module:function`` names (None for an empty ``spec``); ``ValueError`` naming what is
    missing when it cannot be imported."""
    if not spec:
        return None
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"ROLLCALL_LIVE_PROCESSOR: module {module_name!r} cannot be imported ({exc})"
        ) from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"ROLLCALL_LIVE_PROCESSOR: {module_name} has no function {attribute!r}")
    loaded: ProcessorFactory = factory
    return loaded
