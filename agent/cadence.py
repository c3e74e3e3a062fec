"""One grid for every periodic job: ticks fall on multiples of their period on the monotonic clock.

Why: each time the event loop wakes from sleep costs CPU of its own, apart from the work it does
(measured on the 2-vCPU test VM: a tick that wakes the loop alone ~165 us, one that shares its
wake-up with others ~31 us). With every 1-s job on the same whole second, the loop wakes once a
second for all of them instead of once per job: the instances' polls of one interval, the clock
watch, the MQTT client's housekeeping and every fifth tick of the spool's 200-ms commit.

Instances whose driver does its I/O on the event loop (Modbus TCP) tick ``LOOP_IO_PHASE`` of an
interval later: at the whole second the lane threads read and analyse, and the PLC's requests and
answers would wait for the GIL behind them (measured: the 1-Hz values' latency p50 12.7 -> 22.7 ms
with every instance on the whole second).
"""

from __future__ import annotations

import asyncio
import math

LOOP_IO_PHASE = 0.4  # of an interval: away from the lanes' burst, on the spool's 200-ms grid


def grid_origin(now_s: float, period_s: float, phase_s: float = 0.0) -> float:
    """A grid point from which a job that runs now continues on the grid: the point of
    ``phase_s + k * period_s`` in (now - period/2, now + period/2], so the next tick is 0.5-1.5
    periods away."""
    origin = math.floor((now_s - phase_s) / period_s) * period_s + phase_s
    return origin if now_s - origin < period_s / 2 else origin + period_s


def next_grid_s(now_s: float, period_s: float) -> float:
    """The first multiple of ``period_s`` after ``now_s``."""
    return (math.floor(now_s / period_s) + 1) * period_s


async def sleep_to_grid(period_s: float) -> None:
    """Sleep until the next multiple of ``period_s`` on the loop's (monotonic) clock."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    await asyncio.sleep(next_grid_s(now, period_s) - now)
