"""Small, valid media files made in code for tests (no binary fixtures): a PNG and an Ogg Opus voice note.

Both decode in Chromium: the browser test plays the voice note and draws the photo.
"""

from __future__ import annotations

import struct
import zlib


def png_bytes(*, width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A solid-colour RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def _ogg_crc(data: bytes) -> int:
    # Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0.
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packets: list[bytes], *, serial: int, sequence: int, granule: int, flags: int) -> bytes:
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing)) + lacing
    page = header + b"".join(packets)
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus_bytes(*, seconds: float = 1.0) -> bytes:
    """An Ogg Opus stream of silence (20 ms CELT frames), as WhatsApp voice notes are (audio/ogg; codecs=opus)."""
    serial = 0x5A5A
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 6) + b"shokti" + struct.pack("<I", 0)
    silence = b"\xf8\xff\xfe"  # TOC: CELT fullband 20 ms, mono, one frame; a silent frame
    frames = max(1, int(seconds / 0.02))
    pages = [
        _ogg_page([head], serial=serial, sequence=0, granule=0, flags=0x02),
        _ogg_page([tags], serial=serial, sequence=1, granule=0, flags=0),
    ]
    per_page, sequence, written = 50, 2, 0
    while written < frames:
        count = min(per_page, frames - written)
        written += count
        granule = 312 + written * 960
        pages.append(
            _ogg_page([silence] * count, serial=serial, sequence=sequence, granule=granule,
                      flags=0x04 if written == frames else 0)
        )
        sequence += 1
    return b"".join(pages)
