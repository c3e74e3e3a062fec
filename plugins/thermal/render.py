"""A thermal frame as a false-colour PNG with a temperature scale and the regions drawn.

Pure numpy and zlib (no imaging library on the device): bilinear upscaling, an "iron" palette,
a colour bar with its temperatures, region outlines with their names and hot-spot marks, a
3x5 pixel font for the labels. Returns PNG bytes; writing them is the caller's business.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
_ANCHORS = np.array(
    [(0, 0, 0), (30, 0, 110), (120, 0, 160), (200, 30, 110), (240, 100, 0), (255, 190, 0), (255, 255, 220)],
    dtype=np.float64,
)
PALETTE: Image = np.stack(
    [np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, k]) for k in range(3)], axis=1
).astype(np.uint8)

_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001010010",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "_": "000000000000111", " ": "000000000000000", ":": "000010000010000", "A": "010101111101101",
    "B": "110101110101110", "C": "011100100100011", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "011100101101011", "H": "101101111101101", "I": "111010010010111",
    "J": "001001001101010", "K": "101101110101101", "L": "100100100100111", "M": "101111111101101",
    "N": "110101101101101", "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010", "U": "101101101101111",
    "V": "101101101101010", "W": "101101111111101", "X": "101101010101101", "Y": "101101010010010",
    "Z": "111001010100111", "*": "010101010000000",
}  # fmt: skip
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (90, 90, 90)


@dataclass(frozen=True)
class Overlay:
    """A region to draw: its rectangle [column, row, width, height] (None: the frame), hot spot."""

    name: str
    rect: tuple[int, int, int, int] | None
    hot: tuple[int, int] | None = None  # (row, column)
    label: str = ""  # shown after the name (e.g. "62.3C")


def text(img: Image, x: int, y: int, s: str, colour: tuple[int, int, int] = WHITE, scale: int = 2) -> None:
    """Draw ``s`` (upper-cased; unknown characters as blanks) with the 3x5 font; clipped."""
    for i, ch in enumerate(s.upper()):
        bits = _GLYPHS.get(ch, _GLYPHS[" "])
        for k, bit in enumerate(bits):
            if bit == "1":
                r, c = divmod(k, 3)
                y0, x0 = y + r * scale, x + (i * 4 + c) * scale
                img[max(y0, 0) : max(y0 + scale, 0), max(x0, 0) : max(x0 + scale, 0)] = colour


def text_width(s: str, scale: int = 2) -> int:
    return len(s) * 4 * scale


def _upscale(frame: npt.NDArray[np.float64], s: int) -> npt.NDArray[np.float64]:
    """Bilinear upscaling by ``s`` (pixel centres aligned); NaN stays NaN around failed pixels."""
    rows, cols = frame.shape
    ry = np.clip((np.arange(rows * s) + 0.5) / s - 0.5, 0, rows - 1)
    cx = np.clip((np.arange(cols * s) + 0.5) / s - 0.5, 0, cols - 1)
    r0, c0 = np.floor(ry).astype(int), np.floor(cx).astype(int)
    r1, c1 = np.minimum(r0 + 1, rows - 1), np.minimum(c0 + 1, cols - 1)
    fy, fx = (ry - r0)[:, None], (cx - c0)[None, :]
    top = frame[r0][:, c0] * (1 - fx) + frame[r0][:, c1] * fx
    bottom = frame[r1][:, c0] * (1 - fx) + frame[r1][:, c1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy)


def _colours(values: npt.NDArray[np.float64], lo: float, hi: float) -> Image:
    idx = np.clip((values - lo) / max(hi - lo, 1e-9) * 255, 0, 255)
    out = PALETTE[np.nan_to_num(idx, nan=0).astype(np.uint8)]
    out[~np.isfinite(values)] = GREY
    return out


def _box(img: Image, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int], width: int = 2) -> None:
    """A rectangle outline, inclusive corners, clipped to the image."""
    h, w = img.shape[:2]
    xa, xb, ya, yb = max(x0, 0), min(x1, w - 1), max(y0, 0), min(y1, h - 1)
    img[ya : ya + width, xa : xb + 1] = colour
    img[max(yb - width + 1, 0) : yb + 1, xa : xb + 1] = colour
    img[ya : yb + 1, xa : xa + width] = colour
    img[ya : yb + 1, max(xb - width + 1, 0) : xb + 1] = colour


def _scale_bar(img: Image, x: int, y: int, height: int, lo: float, hi: float) -> None:
    ramp = np.linspace(hi, lo, height)[:, None] * np.ones((1, 16))
    img[y : y + height, x : x + 16] = _colours(ramp, lo, hi)
    _box(img, x - 1, y - 1, x + 16, y + height, WHITE, 1)
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        yy = y + round(frac * (height - 1))
        img[yy, x + 16 : x + 21] = WHITE
        text(img, x + 24, max(yy - 5, 0), f"{hi - frac * (hi - lo):.1f}")
    text(img, x, max(y - 16, 0), "C")


def render_png(
    frame_c: npt.ArrayLike,
    regions: Sequence[Overlay] = (),
    *,
    scale: int = 10,
    title: str = "",
    emissivity: float = 1.0,
) -> bytes:
    """The frame (rows, columns, degC at ``emissivity``) as a PNG: false colour, scale bar, regions
    (their labels at their own emissivity), title lines (split at newlines)."""
    frame = np.asarray(frame_c, dtype=np.float64)
    good = frame[np.isfinite(frame)]
    lo, hi = (float(good.min()), float(good.max())) if good.size else (0.0, 1.0)
    if hi - lo < 1.0:
        lo, hi = lo - 0.5, hi + 0.5
    rows, cols = frame.shape
    h, w = rows * scale, cols * scale
    lines = title.split("\n") if title else []
    top = 6 + 14 * len(lines)
    img = np.zeros((h + top + 22, w + 110, 3), dtype=np.uint8)
    img[top : top + h, :w] = _colours(_upscale(frame, scale), lo, hi)
    for ov in regions:
        _overlay(img, ov, scale, rows, cols, y0=top)
    _scale_bar(img, w + 14, top + 16, h - 32, lo, hi)
    for i, line in enumerate(lines):
        text(img, 4, 3 + 14 * i, line[: (w + 100) // 8])
    text(img, 4, top + h + 6, f"MIN {lo:.1f}C  MAX {hi:.1f}C  AT E {emissivity:.2f}")
    return encode_png(img)


def _overlay(img: Image, ov: Overlay, s: int, rows: int, cols: int, y0: int) -> None:
    c, r, w, h = ov.rect if ov.rect is not None else (0, 0, cols, rows)
    _box(img, c * s, y0 + r * s, (c + w) * s - 1, y0 + (r + h) * s - 1, WHITE)
    label = f"{ov.name} {ov.label}".strip()
    x, y = c * s + 4, y0 + r * s + 4
    img[y - 1 : y + 11, x - 2 : x + text_width(label) + 1] = BLACK
    text(img, x, y, label)
    if ov.hot is not None:
        hy, hx = y0 + ov.hot[0] * s + s // 2, ov.hot[1] * s + s // 2
        img[max(hy - 6, 0) : hy + 7, max(hx - 1, 0) : hx + 2] = BLACK
        img[max(hy - 1, 0) : hy + 2, max(hx - 6, 0) : hx + 7] = BLACK
        img[max(hy - 5, 0) : hy + 6, hx : hx + 1] = WHITE
        img[hy : hy + 1, max(hx - 5, 0) : hx + 6] = WHITE


def encode_png(img: Image) -> bytes:
    """RGB uint8 (h, w, 3) -> PNG bytes (8-bit truecolour, no filter, zlib level 6)."""
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
