"""Small-face options: one model for the API, the sessions and the detector, its bounds and its cost."""

import pytest
from pydantic import ValidationError

from contract.jobs import SmallFaces
from errors import InvalidInput


def test_the_defaults_are_the_seeds_tiling() -> None:
    """Unset fields tile as the seed's attendance server did: 3 × 4 tiles, enlarged twice."""
    defaults = SmallFaces()
    assert (defaults.rows, defaults.cols, defaults.scale, defaults.overlap) == (3, 4, 2.0, 0.15)
    assert defaults.min_face_size == 20


def test_tiling_parameters_are_validated() -> None:
    with pytest.raises(ValidationError):
        SmallFaces(mode="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SmallFaces(rows=0)
    with pytest.raises(ValidationError):
        SmallFaces(overlap=0.5)
    with pytest.raises(ValidationError):
        SmallFaces(min_face_size=7)


def test_cost_grows_with_scale_overlap_and_smaller_faces_not_with_the_grid() -> None:
    assert SmallFaces(mode="on").cost() == pytest.approx(4 * 1.3**2)
    assert SmallFaces(mode="on", rows=8, cols=8).cost() == SmallFaces(mode="on", rows=1, cols=1).cost()
    issue = SmallFaces(mode="on", rows=8, cols=8, scale=4, overlap=0.49, min_face_size=8)
    assert issue.cost() == pytest.approx(16 * 1.98**2 * 2.5**2)
    assert SmallFaces(mode="off", scale=4).cost() == 0


def test_a_tiling_over_the_servers_limit_is_refused_with_the_setting_named() -> None:
    SmallFaces(mode="on").check_cost(limit=16.0)
    with pytest.raises(InvalidInput, match="ROLLCALL_SMALL_FACES_MAX_TILE_COST"):
        SmallFaces(mode="on", scale=4, overlap=0.49, min_face_size=8).check_cost(limit=16.0)
    SmallFaces(mode="off", scale=4, overlap=0.49, min_face_size=8).check_cost(limit=16.0)


def test_a_frame_too_large_for_its_tiles_gets_a_smaller_scale() -> None:
    options = SmallFaces(mode="on", scale=2.0, overlap=0.15, min_face_size=20)
    assert options.fitted_scale(1920 * 1080, 24_000_000) == 2.0
    lowered = options.fitted_scale(3840 * 2160, 24_000_000)
    assert 1.0 < lowered < 2.0
    assert 3840 * 2160 * options.model_copy(update={"scale": lowered}).cost() == pytest.approx(24_000_000)
    assert options.fitted_scale(6300 * 6300, 24_000_000) < 1.0
