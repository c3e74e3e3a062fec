"""Thermal frame math: emissivity correction, region statistics, temperature-rise classes. Pure numpy.

Emissivity: the driver's frame is the object temperature at its own emissivity e0 with a reflected
temperature Tr. A grey body at T seen by the sensor sends e T^4 + (1 - e) Tr^4 (Kelvin, Stefan-
Boltzmann), so the blackbody-equivalent (e = 1) is T1^4 = e0 T0^4 + (1 - e0) Tr^4, and at a
region's emissivity e the object is T^4 = (T1^4 - (1 - e) Tr^4) / e: the thermographer's usual
correction, and the datasheet's Ta_r term (its Ta part is the sensor's own, already removed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from edge_agent.plugins.thermal.options import SeverityClass

KELVIN = 273.15
Array = npt.NDArray[np.float64]


def at_emissivity(frame_c: npt.ArrayLike, frame_emissivity: float, emissivity: float, reflected_c: float) -> Array:
    """The frame's temperatures (degC at ``frame_emissivity``) as they are at ``emissivity``."""
    t0 = np.asarray(frame_c, dtype=np.float64) + KELVIN
    tr4 = (reflected_c + KELVIN) ** 4
    t1_4 = frame_emissivity * t0**4 + (1 - frame_emissivity) * tr4
    with np.errstate(invalid="ignore"):
        return np.asarray(np.sqrt(np.sqrt((t1_4 - (1 - emissivity) * tr4) / emissivity)) - KELVIN)


@dataclass(frozen=True, slots=True)
class RegionStats:
    """One region of one frame (NaN pixels, i.e. failed ones, left out)."""

    max_c: float
    mean_c: float
    min_c: float
    hot_row: int  # frame coordinates of the hottest pixel
    hot_col: int
    pixels: int  # good pixels in the region


def crop(frame: Array, rect: tuple[int, int, int, int] | None) -> tuple[Array, int, int]:
    """The region's pixels and its top-left (row, column); ``rect`` is [column, row, width, height]."""
    if rect is None:
        return frame, 0, 0
    c, r, w, h = rect
    return frame[r : r + h, c : c + w], r, c


def region_stats(
    frame: Array, rect: tuple[int, int, int, int] | None, emissivity: tuple[float, float, float] | None = None
) -> RegionStats | None:
    """Max, mean, min and the hot spot of a region; None when it has no good pixel. ``emissivity``
    (frame's, region's, reflected degC): convert the region's pixels first (only those)."""
    part, r0, c0 = crop(frame, rect)
    if emissivity is not None:
        part = at_emissivity(part, *emissivity)
    good = np.isfinite(part)
    if not good.any():
        return None
    masked = np.where(good, part, -np.inf)
    k = int(np.argmax(masked))
    row, col = divmod(k, part.shape[1])
    vals = part[good]
    return RegionStats(float(vals.max()), float(vals.mean()), float(vals.min()), r0 + row, c0 + col, int(vals.size))


def classify(delta_c: float, classes: Sequence[SeverityClass]) -> SeverityClass | None:
    """The highest class whose ``min_delta_c`` the rise reaches; None below the first (or NaN)."""
    found: SeverityClass | None = None
    for cls in sorted(classes, key=lambda c: c.min_delta_c):
        if delta_c >= cls.min_delta_c:
            found = cls
    return found
