"""ISO 10816-3 vibration severity zones from velocity RMS (mm/s, 10-1000 Hz)."""

from __future__ import annotations

import bisect
import enum


class Foundation(enum.StrEnum):
    RIGID = "rigid"
    FLEXIBLE = "flexible"


class Zone(enum.StrEnum):
    A = "A"  # newly commissioned
    B = "B"  # unrestricted long-term operation
    C = "C"  # restricted operation
    D = "D"  # damage likely


# Upper limits (mm/s) of zones A, B and C; above the last is D. ISO 10816-3 table A.1/A.2.
ISO_10816_3_MM_S: dict[tuple[int, Foundation], tuple[float, float, float]] = {
    (1, Foundation.RIGID): (2.3, 4.5, 7.1),
    (1, Foundation.FLEXIBLE): (3.5, 7.1, 11.0),
    (2, Foundation.RIGID): (1.4, 2.8, 4.5),
    (2, Foundation.FLEXIBLE): (2.3, 4.5, 7.1),
}


def zone_limits(machine_group: int, foundation: Foundation) -> tuple[float, float, float]:
    """The A/B, B/C and C/D boundaries in mm/s for a machine group (1: > 300 kW, 2: 15-300 kW)."""
    return ISO_10816_3_MM_S[(machine_group, Foundation(foundation))]


def iso_zone(velocity_rms_mm_s: float, limits: tuple[float, ...]) -> Zone:
    """Zone of a velocity; a value exactly on a boundary belongs to the lower zone."""
    return list(Zone)[bisect.bisect_left(limits, velocity_rms_mm_s)]
