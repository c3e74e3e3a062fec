"""Bearing defect frequencies from geometry or catalogue orders, and the N-of-M fault indicator."""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass


class Tone(enum.StrEnum):
    """Bearing defect tones, in message order."""

    BPFO = "bpfo"  # ball pass frequency, outer race
    BPFI = "bpfi"  # ball pass frequency, inner race
    BSF = "bsf"  # ball spin frequency (a ball defect shows at 2xBSF)
    FTF = "ftf"  # fundamental train (cage) frequency


@dataclass(frozen=True, slots=True)
class Orders:
    """Defect frequencies as multiples of shaft speed (per revolution)."""

    bpfo: float
    bpfi: float
    bsf: float
    ftf: float

    def hz(self, shaft_hz: float) -> dict[Tone, float]:
        """Tone frequencies in Hz at a shaft speed in Hz."""
        return {
            Tone.BPFO: self.bpfo * shaft_hz,
            Tone.BPFI: self.bpfi * shaft_hz,
            Tone.BSF: self.bsf * shaft_hz,
            Tone.FTF: self.ftf * shaft_hz,
        }


def orders_from_geometry(
    balls: int, ball_diameter: float, pitch_diameter: float, contact_angle_deg: float = 0.0
) -> Orders:
    """Classic kinematic formulas (no slip); diameters in any one unit."""
    r = ball_diameter / pitch_diameter * math.cos(math.radians(contact_angle_deg))
    return Orders(
        bpfo=balls / 2.0 * (1 - r),
        bpfi=balls / 2.0 * (1 + r),
        bsf=pitch_diameter / (2.0 * ball_diameter) * (1 - r * r),
        ftf=0.5 * (1 - r),
    )


class NofM:
    """Raise when at least ``n`` of the last ``m`` windows passed; clear when fewer than ``n`` did."""

    __slots__ = ("active", "history", "n")

    def __init__(self, n: int, m: int) -> None:
        self.n = n
        self.history: deque[bool] = deque(maxlen=m)
        self.active = False

    def update(self, passed: bool) -> bool | None:
        """Feed one window; return the new state when it changed, else None."""
        self.history.append(passed)
        state = sum(self.history) >= self.n
        if state == self.active:
            return None
        self.active = state
        return state
