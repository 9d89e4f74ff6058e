"""What a small-face tiling costs, and how big a frame's tiles may be: shared by the API and the workers.

Imports nothing heavy (the API uses it at submission and never loads ``ml``).
"""

from __future__ import annotations

import math
from typing import Any

# ml.tiling.TilingParams' defaults (the API never imports ml; a test keeps the two equal).
TILE_DEFAULTS: dict[str, float] = {"scale": 2.0, "overlap": 0.15, "min_face_size": 20}
# The face size the cost is measured against: ROLLCALL_MIN_FACE_SIZE's default, the whole frame's.
COST_FACE_SIZE = 20


def tile_cost(options: dict[str, Any]) -> float:
    """Pixels the enlarged tiles hold per frame pixel, scaled to the default face size (0 when off).

    The tiles together cover the frame once, each widened by ``overlap`` on every side and enlarged
    ``scale`` times; the detector's first pyramid level grows as (12 / min_face_size)². The grid's
    rows and columns change how the work is cut, not how much of it there is.
    """
    if options.get("mode", "auto") == "off":
        return 0.0
    p = {**TILE_DEFAULTS, **{k: options[k] for k in TILE_DEFAULTS if options.get(k) is not None}}
    return float(p["scale"] ** 2 * (1 + 2 * p["overlap"]) ** 2 * (COST_FACE_SIZE / p["min_face_size"]) ** 2)


def fitted_scale(options: dict[str, Any], frame_pixels: int, max_tile_pixels: int) -> float:
    """The largest scale (at most the asked one) whose tiles hold at most ``max_tile_pixels`` (<1: none)."""
    cost = tile_cost({**options, "mode": "on"})
    if frame_pixels * cost <= max_tile_pixels:
        return float(options.get("scale") or TILE_DEFAULTS["scale"])
    scale = float(options.get("scale") or TILE_DEFAULTS["scale"])
    return scale * math.sqrt(max_tile_pixels / (frame_pixels * cost))
