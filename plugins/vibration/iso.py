"""ISO 20816-3 vibration severity zones from velocity RMS (mm/s, 10-1000 Hz).

ISO 20816-3:2022 replaced ISO 10816-3:2009 for industrial machines (15 kW-50 MW, 120-30,000 rpm)
measured on non-rotating parts; the zone boundaries in velocity for groups 1 and 2 on rigid and
flexible foundations are unchanged, so configs written for 10816-3 (``machine_group``,
``foundation``, ``iso_limits_mm_s``) keep their meaning. The zones are named as 20816-3 names them.
"""

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

    @property
    def description(self) -> str:
        """The zone's meaning in ISO 20816-3's terms."""
        return ZONE_NAMES[self]


# What each zone means (ISO 20816-3 clause 6.3.1, the same words as 10816-3 5.3.1 in substance).
ZONE_NAMES: dict[Zone, str] = {
    Zone.A: "newly commissioned machines",
    Zone.B: "acceptable for unrestricted long-term operation",
    Zone.C: "unsatisfactory for long-term continuous operation: restricted operation until remedial action",
    Zone.D: "severe enough to cause damage to the machine",
}


# Upper limits (mm/s) of zones A, B and C; above the last is D. ISO 20816-3 annex A, tables A.1
# (group 1: > 300 kW, or shaft height >= 315 mm) and A.2 (group 2: 15-300 kW, shaft height 160-315 mm);
# the same values as ISO 10816-3 tables A.1/A.2.
ISO_20816_3_MM_S: dict[tuple[int, Foundation], tuple[float, float, float]] = {
    (1, Foundation.RIGID): (2.3, 4.5, 7.1),
    (1, Foundation.FLEXIBLE): (3.5, 7.1, 11.0),
    (2, Foundation.RIGID): (1.4, 2.8, 4.5),
    (2, Foundation.FLEXIBLE): (2.3, 4.5, 7.1),
}
ISO_10816_3_MM_S = ISO_20816_3_MM_S  # the older name, kept for code written against 10816-3


def zone_limits(machine_group: int, foundation: Foundation) -> tuple[float, float, float]:
    """The A/B, B/C and C/D boundaries in mm/s for a machine group (1: > 300 kW, 2: 15-300 kW)."""
    return ISO_20816_3_MM_S[(machine_group, Foundation(foundation))]


def iso_zone(velocity_rms_mm_s: float, limits: tuple[float, ...]) -> Zone:
    """Zone of a velocity; a value exactly on a boundary belongs to the lower zone."""
    return list(Zone)[bisect.bisect_left(limits, velocity_rms_mm_s)]
