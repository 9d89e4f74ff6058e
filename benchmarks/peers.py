"""Part 9: rollcall's detection against facenet-pytorch 2.6.0's MTCNN, same frames, same threads.

facenet-pytorch pins torch < 2.3, so it is never installed: its module files are read from the wheel
the model store already fetched for the MTCNN weights (``<model dir>/downloads``), copied into a
temporary package without its ``__init__`` (which would import its other models), and imported from
there: pip never sees it, torch stays as it is. Its MTCNN runs with its defaults, which are rollcall's
(minimum face 20 px, thresholds 0.6 / 0.7 / 0.7, factor 0.709), on the same RGB frames.
Both sides run back to back, alternating which goes first; the figure is the median of the pairs'
ratios, facenet-pytorch time / rollcall time.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2

from benchmarks.engine import engine_of
from benchmarks.frames import Frame
from benchmarks.networks import NetworkClock
from benchmarks.stats import ratio, summarize
from ml.pipeline import FacePipeline
from ml.timing import StageTimer

log = logging.getLogger("benchmarks.peers")
WHEEL = "facenet_pytorch-2.6.0-py3-none-any.whl"
MODULES = ("models/mtcnn.py", "models/utils/detect_face.py", "data/pnet.pt", "data/rnet.pt", "data/onet.pt")


@contextmanager
def facenet_pytorch_mtcnn(model_dir: Path) -> Iterator[Any]:
    """facenet-pytorch's ``MTCNN`` (its own weights from its wheel), imported without installing it."""
    wheel = model_dir / "downloads" / WHEEL
    if not wheel.is_file():
        raise FileNotFoundError(
            f"{wheel} is missing: run `python -m ml.weights fetch` (it downloads the wheel)"
        )
    folder = Path(tempfile.mkdtemp(prefix="facenet-pytorch-"))
    package = folder / "facenet_pytorch"
    with zipfile.ZipFile(wheel) as archive:
        for member in MODULES:
            target = package / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(f"facenet_pytorch/{member}"))
    for init in ("__init__.py", "models/__init__.py", "models/utils/__init__.py"):
        (package / init).touch()
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("facenet_pytorch.models.mtcnn")
        yield module.MTCNN(device="cpu")
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == "facenet_pytorch" or n.startswith("facenet_pytorch.")]:
            del sys.modules[name]
        shutil.rmtree(folder)


def compare_detection(
    pipe: FacePipeline, model_dir: Path, frames: Sequence[Frame], repeats: int, warmup: int
) -> dict[str, Any]:
    """Detection time per frame both ways, the faces each found, and the ratio's ceiling (their time /
    the time rollcall spent inside its three networks, ``benchmarks.networks``)."""
    networks = NetworkClock(pipe)
    inside: list[float] = []
    with facenet_pytorch_mtcnn(model_dir) as peer:

        def ours(frame: Frame) -> tuple[float, int]:
            clock = StageTimer()
            with networks.measuring(), clock.stage("detect"):
                found = pipe.detect([frame.image])[0]
            inside.append(networks.ms)
            return clock.ms["detect"], len(found)

        def theirs(frame: Frame) -> tuple[float, int]:
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)  # what it is given: RGB, as from PIL
            clock = StageTimer()
            with clock.stage("detect"):
                boxes, _ = peer.detect(rgb)
            return clock.ms["detect"], 0 if boxes is None else len(boxes)

        for _ in range(warmup):
            for frame in frames:
                ours(frame)
                theirs(frame)
        our_ms: list[float] = []
        peer_ms: list[float] = []
        pairs: list[float] = []
        ceilings: list[float] = []
        faces = {"rollcall": 0, "facenet_pytorch": 0}
        for r in range(repeats):
            for i, frame in enumerate(frames):
                if (r + i) % 2 == 0:
                    (a, na), (b, nb) = ours(frame), theirs(frame)
                else:
                    (b, nb), (a, na) = theirs(frame), ours(frame)
                our_ms.append(a)
                peer_ms.append(b)
                pairs.append(b / a)
                ceilings.append(b / max(inside[-1], 1e-3))
                if r == 0:
                    faces["rollcall"] += na
                    faces["facenet_pytorch"] += nb
    mine, peer_summary = summarize(our_ms), summarize(peer_ms)
    return {
        "samples": len(pairs),
        "rollcall_detect_ms": mine.to_json(),
        "facenet_pytorch_detect_ms": peer_summary.to_json(),
        "speedup": round(summarize(pairs).median, 3),
        "speedup_of_medians": ratio(peer_summary.median, mine.median),
        "speedup_ceiling": round(summarize(ceilings).median, 3),
        "faces_found": faces,
    }


def run(
    pipe: FacePipeline, model_dir: Path, frames_by_size: dict[str, list[Frame]], repeats: int, warmup: int
) -> dict[str, Any]:
    sizes = {}
    for size, frames in frames_by_size.items():
        sizes[size] = compare_detection(pipe, model_dir, frames, repeats, warmup)
        log.info(
            "peers: %s: rollcall %.1f ms, facenet-pytorch %.1f ms per frame: %.2fx",
            size,
            sizes[size]["rollcall_detect_ms"]["median"],
            sizes[size]["facenet_pytorch_detect_ms"]["median"],
            sizes[size]["speedup"],
        )
    return {
        "peer": "facenet-pytorch 2.6.0 MTCNN (from its wheel)",
        "engine": engine_of(pipe.describe()),
        "sizes": sizes,
    }
