"""Thermal and diagnosis costs, run by hand: ``.venv/bin/python -m bench.thermal [--repeat 500]``.

1. One 32x24 MLX90640 frame: both subpages' object temperatures from their RAM words (numpy,
   vectorised; calibration restored once at open), median of ``--repeat`` (goal <= 2 ms).
2. The machine diagnosis's share of the vibration analysis: ``analyse()`` of one window with and
   without the diagnosis (1 s of 3-axis 25.6 kHz, and 1 s of 3-axis 3.2 kHz), medians (goal <= 10 %).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
from edge_agent.drivers.mlx90640 import Mlx90640Driver, Mlx90640Options
from edge_agent.drivers.mlx90640 import compute as C
from edge_agent.plugins.testing.vibration_faults import Case, TrueFault, feature_config, window
from edge_agent.plugins.vibration import features as F
from edge_agent.plugins.vibration.analysis import analyse
from edge_agent.plugins.vibration.diagnosis import diagnose, quiet, symptoms


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def frame_cost(repeat: int) -> None:
    d = Mlx90640Driver(msgspec.convert({"backend": "sim"}, Mlx90640Options))
    d.open()
    assert d.chip is not None and d.cal is not None
    rams = []
    for _ in range(2):
        d.chip.measure()
        rams.append(d.chip.ram.copy())
        d.chip.regs[0x8000] &= ~0x0008

    def frame() -> None:
        for sub, ram in enumerate(rams):
            C.subpage_temperatures(d.cal, ram, d.control, sub)  # type: ignore[arg-type]

    print(f"MLX90640 frame (2 subpages, 768 pixels): median {median_ms(frame, repeat):.3f} ms (goal <= 2 ms)")


def _paired(fa: Callable[[], Any], fb: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Medians of a and b, the thread's CPU time, timed alternately: other jobs on this shared
    machine stretch wall-clock times by 2-4x and unevenly; CPU time of this thread much less."""
    ta: list[int] = []
    tb: list[int] = []
    for _ in range(repeat):
        for fn, out in ((fa, ta), (fb, tb)):
            t0 = time.thread_time_ns()
            fn()
            out.append(time.thread_time_ns() - t0)
    return statistics.median(ta) / 1e6, statistics.median(tb) / 1e6


def median_cpu_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.thread_time_ns()
        fn()
        times.append(time.thread_time_ns() - t0)
    return statistics.median(times) / 1e6


def _diagnosis_alone(x: Any, rate: float, gate_mm_s: float) -> Callable[[], Any]:
    """The diagnosis's own steps as analyse() runs them, from an already computed spectrum."""
    xt = np.ascontiguousarray(np.asarray(x).T)
    sp = F.spectrum(xt, rate)
    power = sp.power()
    vel = F.velocity_rms_mm_s(power, sp)

    def run() -> Any:
        found = quiet(float(vel.max()), 24.75, gate_mm_s, (10.0, 1000.0))
        return found or diagnose(symptoms(power, sp, 24.75, ("x", "y", "z"), "z", vel), gate_mm_s)

    return run


CASES = (("healthy, zone B", TrueFault.HEALTHY), ("unbalance, zone C", TrueFault.UNBALANCE))


def diagnosis_share(repeat: int) -> None:
    for rate in (25600.0, 3200.0):
        for label, fault in CASES:
            x = window(Case(fault, 1485.0, "moderate", 0), 2.8, rate_hz=rate)
            with_d = feature_config(rate)
            without = dataclasses.replace(with_d, diagnosis_gate_mm_s=None)
            fa = functools.partial(analyse, x, rate, without, 24.75)
            fb = functools.partial(analyse, x, rate, with_d, 24.75)
            a, b = _paired(fa, fb, repeat)
            d = median_cpu_ms(_diagnosis_alone(x, rate, 2.8), repeat * 4)
            print(
                f"{rate:>7g} Hz, 1 s x 3 axes, {label}: analysis {a:.3f} ms, with the diagnosis {b:.3f} ms "
                f"(+{(b - a) / a * 100:.1f} %); the diagnosis alone {d * 1e3:.0f} us = {d / a * 100:.1f} % "
                "(goal <= 10 %)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=500)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    frame_cost(args.repeat)
    diagnosis_share(args.repeat)


if __name__ == "__main__":
    main()
