"""Image bytes for tests: real photos from the shared data and crafted decompression bombs."""

from __future__ import annotations

import functools
import struct
import zlib

from tests.shared_data import shared_dir

PHOTOS = "oracles/mtcnn_facenet_pytorch/images"


def shared_photo(name: str) -> bytes:
    """The bytes of one of the shared reference photos (a missing file fails the test)."""
    path = shared_dir() / PHOTOS / name
    if not path.is_file():
        raise FileNotFoundError(f"shared photo {path} is missing: see {PHOTOS}/MANIFEST.md")
    return path.read_bytes()


@functools.cache
@functools.cache
def png_bomb(width: int, height: int) -> bytes:
    """A complete, valid 1-bit grayscale PNG of ``width``×``height`` black pixels.

    At 30,000×30,000 it is ~110 kB on disk but 2.7 GB once decoded to BGR, so only a
    size check made before decoding can refuse it. Compressed row block by row block to keep
    the test's own memory small. Cached: fake cameras serve it without compressing 110 MB per request.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    block_rows = max(1, 4_000_000 // len(row))
    idat = bytearray()
    for first in range(0, height, block_rows):
        idat += compressor.compress(row * min(block_rows, height - first))
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", bytes(idat))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def jpeg_claiming_size(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header (SOF) is rewritten to declare ``width``×``height``."""
    position = 2
    while position + 4 <= len(jpeg):
        marker = jpeg[position + 1]
        (length,) = struct.unpack(">H", jpeg[position + 2 : position + 4])
        if marker in (0xC0, 0xC1, 0xC2):
            size_at = position + 5  # after marker (2), length (2), precision (1)
            return jpeg[:size_at] + struct.pack(">HH", height, width) + jpeg[size_at + 4 :]
        position += 2 + length
    raise ValueError("no frame header found in the JPEG")
