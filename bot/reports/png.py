"""A tiny RGB raster with a built-in 5×7 pixel font, encoded as PNG with zlib + struct.

Enough for bar charts: filled rectangles and short labels of digits and a few signs (``85%``,
``¥1,250``, ``2026-Q4``). No image library and no system font is needed, so a chart renders the same
on any server; Chinese text stays in the chat message next to the picture.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]

GLYPH_W, GLYPH_H = 5, 7
ADVANCE = GLYPH_W + 1  # one blank column between glyphs

# 5×7 glyphs, one string per row, "#" = ink. Characters not listed draw as blank space.
GLYPHS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "%": ("##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    ",": (".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."),
    "/": (".....", "....#", "...#.", "..#..", ".#...", "#....", "....."),
    ":": (".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
    "¥": ("#...#", ".#.#.", "..#..", "#####", "..#..", "#####", "..#.."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
}


def _runs(rows: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    """Horizontal ink runs (x, y, length) of a glyph: one rectangle each instead of one per pixel."""
    out = []
    for y, row in enumerate(rows):
        for x, c in enumerate(row):
            if c == "#" and (x == 0 or row[x - 1] != "#"):
                out.append((x, y, len(row[x:]) - len(row[x:].lstrip("#"))))
    return tuple(out)


_INK: dict[str, tuple[tuple[int, int, int], ...]] = {ch: _runs(rows) for ch, rows in GLYPHS.items()}


def text_width(text: str, scale: int) -> int:
    """Pixel width of ``text`` at ``scale`` (no trailing gap)."""
    return max(0, len(text) * ADVANCE * scale - scale)


def drawable(char: str) -> bool:
    return char == " " or char in _INK


class Canvas:
    """An RGB image in one bytearray; drawing clips to the canvas."""

    def __init__(self, width: int, height: int, background: Color) -> None:
        if width <= 0 or height <= 0:
            raise ValueError("canvas needs a positive size")
        self.width, self.height = width, height
        self._row = width * 3
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x0 >= x1 or y0 >= y1:
            return
        run = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = row * self._row + x0 * 3
            self.pixels[start : start + len(run)] = run

    def text(self, x: int, y: int, text: str, color: Color, scale: int = 2) -> None:
        """Draw ``text`` with its top-left corner at (x, y)."""
        for i, char in enumerate(text):
            left = x + i * ADVANCE * scale
            for gx, gy, length in _INK.get(char, ()):
                self.rect(left + gx * scale, y + gy * scale, length * scale, scale, color)

    def pixel(self, x: int, y: int) -> Color:
        start = (y * self.width + x) * 3
        r, g, b = self.pixels[start : start + 3]
        return r, g, b

    def png(self) -> bytes:
        """The image as PNG bytes: 8-bit RGB, filter 0 on every row, one IDAT."""
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self._row : (y + 1) * self._row]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"".join(
            (b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(raw, 6)), _chunk(b"IEND", b""))
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def dotted(canvas: Canvas, x: int, y: int, w: int, color: Color, step: int = 4) -> None:
    """A horizontal dotted line (grid lines, "rows left out" marks)."""
    for left in range(x, x + w, step):
        canvas.rect(left, y, min(2, x + w - left), 1, color)


def widest(texts: Sequence[str], scale: int) -> int:
    return max((text_width(t, scale) for t in texts), default=0)
