"""decode_image: real photos decode to BGR frames; bombs, truncations and non-images fail with their codes."""

from __future__ import annotations

import io
import resource
import time

import cv2
import numpy as np
import pytest
from PIL import Image

import errors
from ml.image import decode_image, encode_jpeg, image_size
from tests.images import PHOTOS, jpeg_claiming_size, png_bomb, shared_photo
from tests.shared_data import shared_dir

LIMIT = 40_000_000


def _png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


@pytest.mark.parametrize("name", ["obama_small.jpg", "kit_with_rose.jpg", "lin-manuel-miranda.png"])
def test_real_photo_decodes_to_the_same_bgr_pixels_as_imread(name: str) -> None:
    frame = decode_image(shared_photo(name), LIMIT)
    expected = cv2.imread(str(shared_dir() / PHOTOS / name), cv2.IMREAD_COLOR)
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    np.testing.assert_array_equal(frame, expected)


def test_grayscale_png_becomes_three_equal_bgr_channels() -> None:
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(10, 12)
    frame = decode_image(_png(gray), LIMIT)
    assert frame.shape == (10, 12, 3)
    for channel in range(3):
        np.testing.assert_array_equal(frame[:, :, channel], gray)


def test_png_with_alpha_drops_alpha_and_keeps_bgr() -> None:
    bgra = np.zeros((6, 8, 4), dtype=np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 128
    frame = decode_image(_png(bgra), LIMIT)
    assert frame.shape == (6, 8, 3)
    assert frame[0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize("fmt", ["WEBP", "BMP"])
def test_webp_and_bmp_are_accepted(fmt: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 100, 50)).save(buffer, fmt, lossless=True)
    frame = decode_image(buffer.getvalue(), LIMIT)
    assert frame.shape == (10, 20, 3)
    assert frame[5, 5].tolist() == [50, 100, 200]  # BGR


def test_a_30000_square_png_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(30_000, 30_000)
    assert len(bomb) < 1_000_000  # small on the wire, 2.7 GB decoded
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(errors.FrameTooLarge) as caught:
        decode_image(bomb, LIMIT)
    assert caught.value.code == "frame_too_large"
    assert time.monotonic() - started < 1.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib) / 1024
    assert grown_mib < 100, f"refusing the bomb raised peak memory by {grown_mib:.0f} MiB"


def test_the_bomb_generator_makes_real_pngs() -> None:
    """The same generator at a small size gives a PNG that decodes, so the bomb above is a real image."""
    frame = decode_image(png_bomb(300, 200), LIMIT)
    assert frame.shape == (200, 300, 3) and not frame.any()


def test_a_jpeg_declaring_30000_square_is_refused_before_decoding() -> None:
    bomb = jpeg_claiming_size(shared_photo("obama_small.jpg"), 30_000, 30_000)
    assert image_size(jpeg_claiming_size(shared_photo("obama_small.jpg"), 640, 480), LIMIT) == (640, 480)
    with pytest.raises(errors.FrameTooLarge) as caught:
        decode_image(bomb, LIMIT)
    assert caught.value.code == "frame_too_large"


def test_pixel_limit_is_inclusive() -> None:
    data = shared_photo("obama_small.jpg")  # 320×240
    assert decode_image(data, 320 * 240).shape == (240, 320, 3)
    with pytest.raises(errors.FrameTooLarge) as caught:
        decode_image(data, 320 * 240 - 1)
    assert caught.value.code == "frame_too_large"
    assert "320×240" in caught.value.message


@pytest.mark.parametrize(
    ("label", "cut"),
    [
        ("half", lambda d: d[: len(d) // 2]),
        ("no end marker", lambda d: d[:-2]),
        ("header only", lambda d: d[:600]),
    ],
)
def test_truncated_jpeg_is_not_an_image(label: str, cut) -> None:
    with pytest.raises(errors.NotAnImage) as caught:
        decode_image(cut(shared_photo("obama_small.jpg")), LIMIT)
    assert caught.value.code == "not_an_image", label


def test_truncated_png_is_not_an_image() -> None:
    data = shared_photo("lin-manuel-miranda.png")
    for cut in (len(data) // 2, len(data) - 12):
        with pytest.raises(errors.NotAnImage) as caught:
            decode_image(data[:cut], LIMIT)
        assert caught.value.code == "not_an_image"


def test_corrupt_jpeg_body_is_not_an_image() -> None:
    data = bytearray(shared_photo("obama_small.jpg"))
    data[400:-2] = b"\x00" * (len(data) - 402)  # header intact, scan data destroyed
    with pytest.raises(errors.NotAnImage) as caught:
        decode_image(bytes(data), LIMIT)
    assert caught.value.code == "not_an_image"


@pytest.mark.parametrize(
    "data",
    [b"", b"<html><body>login</body></html>", b"\x00" * 1000, np.random.default_rng(0).bytes(4096)],
    ids=["empty", "html", "zeros", "random"],
)
def test_non_image_bytes_are_not_an_image(data: bytes) -> None:
    with pytest.raises(errors.NotAnImage) as caught:
        decode_image(data, LIMIT)
    assert caught.value.code == "not_an_image"


def test_formats_outside_the_accepted_list_are_not_an_image() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "GIF")
    with pytest.raises(errors.NotAnImage) as caught:
        decode_image(buffer.getvalue(), LIMIT)
    assert caught.value.code == "not_an_image"


def test_encode_jpeg_round_trips_through_decode() -> None:
    frame = decode_image(shared_photo("obama_small.jpg"), LIMIT)
    again = decode_image(encode_jpeg(frame, quality=95), LIMIT)
    assert again.shape == frame.shape
    assert np.abs(again.astype(np.int16) - frame.astype(np.int16)).mean() < 3.0


def test_encode_jpeg_refuses_a_float_frame() -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        encode_jpeg(np.zeros((4, 4, 3), dtype=np.float32))
    assert caught.value.code == "invalid_input"
