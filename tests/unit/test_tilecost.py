"""The small-face tiling cost the API checks at submission and the workers bound each frame by."""

import pytest

from contract.tilecost import TILE_DEFAULTS, fitted_scale, tile_cost
from ml.tiling import TilingParams


def test_the_api_defaults_are_the_detector_defaults() -> None:
    defaults = TilingParams()
    assert TILE_DEFAULTS == {k: getattr(defaults, k) for k in TILE_DEFAULTS}


def test_cost_grows_with_scale_overlap_and_smaller_faces_not_with_the_grid() -> None:
    assert tile_cost({"mode": "on"}) == pytest.approx(4 * 1.3**2)
    assert tile_cost({"mode": "on", "rows": 8, "cols": 8}) == tile_cost({"mode": "on", "rows": 1, "cols": 1})
    issue = {"mode": "on", "rows": 8, "cols": 8, "scale": 4, "overlap": 0.49, "min_face_size": 8}
    assert tile_cost(issue) == pytest.approx(16 * 1.98**2 * 2.5**2)
    assert tile_cost({"mode": "off", "scale": 4}) == 0


def test_a_frame_too_large_for_its_tiles_gets_a_smaller_scale() -> None:
    options = {"scale": 2.0, "overlap": 0.15, "min_face_size": 20}
    assert fitted_scale(options, 1920 * 1080, 24_000_000) == 2.0
    lowered = fitted_scale(options, 3840 * 2160, 24_000_000)
    assert 1.0 < lowered < 2.0
    assert 3840 * 2160 * tile_cost({**options, "scale": lowered}) == pytest.approx(24_000_000)
    assert fitted_scale(options, 6300 * 6300, 24_000_000) < 1.0
