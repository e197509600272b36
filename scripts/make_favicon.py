"""Draw static/root/favicon.ico (16 and 32 px): a white bolt ("shokti" is strength) on the console's teal.

No image library: each size is a 32-bit BMP inside the ICO container, rasterised here with 4x4
supersampling. Run it again after changing the shape: `python scripts/make_favicon.py`.
"""

from __future__ import annotations

import struct
from pathlib import Path

TEAL = (0x0F, 0x76, 0x6E)
WHITE = (0xFF, 0xFF, 0xFF)
# The bolt, in a 0-1 square (x right, y down).
BOLT = [(0.58, 0.10), (0.26, 0.56), (0.47, 0.56), (0.40, 0.90), (0.74, 0.42), (0.53, 0.42), (0.62, 0.10)]
RADIUS = 0.22  # the background's rounded corners
SAMPLES = 4


def _inside_polygon(x: float, y: float, polygon: list[tuple[float, float]]) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _inside_rounded_square(x: float, y: float) -> bool:
    cx = min(max(x, RADIUS), 1 - RADIUS)
    cy = min(max(y, RADIUS), 1 - RADIUS)
    return (x - cx) ** 2 + (y - cy) ** 2 <= RADIUS**2


def _pixel(px: int, py: int, size: int) -> tuple[int, int, int, int]:
    """(b, g, r, a) of one pixel: the average of its samples."""
    totals = [0.0, 0.0, 0.0, 0.0]
    for sy in range(SAMPLES):
        for sx in range(SAMPLES):
            x, y = (px + (sx + 0.5) / SAMPLES) / size, (py + (sy + 0.5) / SAMPLES) / size
            if not _inside_rounded_square(x, y):
                continue
            color = WHITE if _inside_polygon(x, y, BOLT) else TEAL
            for channel in range(3):
                totals[channel] += color[channel]
            totals[3] += 255
    count = SAMPLES * SAMPLES
    alpha = totals[3] / count
    if not alpha:
        return (0, 0, 0, 0)
    r, g, b = (totals[channel] / (totals[3] / 255) for channel in range(3))
    return (round(b), round(g), round(r), round(alpha))


def _bmp(size: int) -> bytes:
    header = struct.pack("<IiiHHIIiiII", 40, size, size * 2, 1, 32, 0, 0, 0, 0, 0, 0)
    rows = []
    for py in reversed(range(size)):  # bottom-up
        rows.append(b"".join(bytes(_pixel(px, py, size)) for px in range(size)))
    mask_row = b"\x00" * (((size + 31) // 32) * 4)  # the AND mask: alpha does the work
    return header + b"".join(rows) + mask_row * size


def main() -> None:
    images = [(size, _bmp(size)) for size in (16, 32)]
    offset = 6 + 16 * len(images)
    directory = b""
    for size, data in images:
        directory += struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(data), offset)
        offset += len(data)
    path = Path(__file__).resolve().parents[1] / "static" / "root" / "favicon.ico"
    path.write_bytes(struct.pack("<HHH", 0, 1, len(images)) + directory + b"".join(data for _, data in images))
    print(f"{path}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
