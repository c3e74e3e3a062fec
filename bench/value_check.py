"""The cost of enforcing declared values (agent/runtime/value_check.py), per value, run by hand:
``.venv/bin/python -m bench.value_check``.

Prints nanoseconds per value for the reference plant's largest source (the PLC: 500 float tags
in one reading), a nested plugin emit (vibration-like features of three axes), a wildcard
declaration (the system plugin's per-instance keys) and a reading full of junk, and what that
makes of the reference plant's CPU budget per second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from edge_agent.agent.runtime.value_check import ValueGuard
from edge_agent.drivers.contract import DType, Values, ValueSpec


def ns_per_value(fn: Callable[[], Any], values: int, seconds: float = 1.0) -> float:
    """Nanoseconds per value of ``fn`` (which checks ``values`` values), best of three runs."""
    best = math.inf
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            fn()
            n += 1
        best = min(best, (time.perf_counter() - t0) / n / values * 1e9)
    return best


def _noop(*_: Any) -> None:
    return None


def main() -> None:
    tags = [ValueSpec(f"tag_{i:03d}", DType.FLOAT32, "bar") for i in range(500)]
    plc = ValueGuard("plc", tags, _noop)
    reading = Values({s.key: 1.5 + i for i, s in enumerate(tags)})
    axes = ("x", "y", "z")
    features = ("velocity_rms_mm_s", "accel_rms_g", "accel_peak_g", "crest_factor", "kurtosis", "bpfo_g")
    vib_specs = [ValueSpec(f"{a}.{f}", DType.FLOAT32) for a in axes for f in features]
    vib = ValueGuard("vibration", vib_specs, _noop)
    emitted = {a: dict.fromkeys(features, 0.5) for a in axes}
    wild = ValueGuard("system", [ValueSpec("instances.*.polls", DType.INT)], _noop)
    system = {"instances": {f"i{i}": {"polls": i} for i in range(20)}}
    junk_guard = ValueGuard("junk", tags, _noop)
    junk = Values({s.key: (math.nan if i % 2 else "x") for i, s in enumerate(tags)})
    rows = [
        ("driver reading, 500 float tags (PLC)", ns_per_value(lambda: plc.check_reading(reading), 500)),
        ("plugin emit, 3 axes x 6 features (nested)", ns_per_value(lambda: vib.check(emitted, None), 18)),
        ("plugin emit, wildcard keys (system)", ns_per_value(lambda: wild.check(system, None), 20)),
        ("driver reading, 500 junk values", ns_per_value(lambda: junk_guard.check_reading(junk), 500)),
    ]
    for name, ns in rows:
        print(f"{name:45s} {ns:8.0f} ns/value")
    plant_values_per_s = 500 + 8 + 3 * 18 + 20  # PLC, thermocouples, vibration features, system
    cost = rows[0][1] * plant_values_per_s * 2 / 1e9  # both seams
    print(f"reference plant, ~{plant_values_per_s} values/s through both seams: {cost * 100:.3f} % of a core")


if __name__ == "__main__":
    main()
