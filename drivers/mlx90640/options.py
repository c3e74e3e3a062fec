"""Options of the ``mlx90640`` driver (``driver = { type = "mlx90640", ... }``)."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from edge_agent.drivers.contract import HEX, Options
from edge_agent.drivers.mlx90640.emulator import SceneOptions

# Control register bits 9:7: the subpage refresh rate (a full frame is two subpages).
REFRESH_CODES = {0.5: 0, 1.0: 1, 2.0: 2, 4.0: 3, 8.0: 4, 16.0: 5, 32.0: 6, 64.0: 7}


class Backend(enum.StrEnum):
    HW = "hw"
    SIM = "sim"  # the emulated chip (drivers/mlx90640/emulator.py) serving a scene


class ReadingPattern(enum.StrEnum):
    CHESS = "chess"  # the factory default; Melexis calibrates in it
    INTERLEAVED = "interleaved"


class Mlx90640Options(Options):
    backend: Backend = Backend.HW
    device: str = "/dev/i2c-1"
    address: Annotated[int, msgspec.Meta(ge=0x01, le=0x7F, extra=HEX)] = 0x33
    refresh_hz: float = 4.0  # subpage rate: 0.5 .. 64 Hz; a full frame takes two (4 Hz -> 2 frames/s)
    pattern: ReadingPattern = ReadingPattern.CHESS
    emissivity: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0  # frame_c at this emissivity
    reflected_c: float | None = None  # reflected apparent temperature; default Ta - 8 (datasheet)
    sim: SceneOptions = msgspec.field(default_factory=SceneOptions)


def check_options(o: Mlx90640Options) -> list[str]:
    """Refresh rate among the chip's codes; above 16 Hz the 1664-byte RAM read needs a 1 MHz bus."""
    if o.refresh_hz not in REFRESH_CODES:
        return [f"refresh_hz: {o.refresh_hz} is not an MLX90640 rate ({', '.join(f'{r:g}' for r in REFRESH_CODES)})"]
    return []
