"""A conformance kit for drivers: run it from a driver package's own tests.

from edge_agent.drivers.conformance import check_driver
assert check_driver(SPEC, {"backend": "sim"}) == []
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from edge_agent.drivers.contract import Capability, DriverSpec, Values, Waveform, check_driver_spec
from edge_agent.drivers.errors import DriverError


def _call(fn: Callable[[], Any]) -> Any:
    if inspect.iscoroutinefunction(fn):
        return asyncio.run(fn())
    return fn()


def _check_reading(spec: DriverSpec, reading: Any) -> list[str]:
    if Capability.WAVEFORM in spec.provides and isinstance(reading, Waveform):
        return [] if reading.rate_hz > 0 and len(reading.axes) > 0 else ["read: waveform without rate or axes"]
    if isinstance(reading, Values):
        bad = [k for k, v in reading.values.items() if not isinstance(v, (int, float, bool, str, type(None)))]
        return [f"read: value {k!r} is not a scalar" for k in bad]
    return [] if Capability.VALUES not in spec.provides else [f"read: expected Values, got {type(reading).__name__}"]


def check_driver(spec: DriverSpec, options: Mapping[str, Any], *, reads: int = 3) -> list[str]:
    """Check the spec, then open / read / close / close again with ``options``; return problems."""
    problems: list[str] = []
    try:
        check_driver_spec(spec, f"driver {getattr(spec, 'name', '?')!r}")
        opts = msgspec.convert(dict(options), spec.options)
    except (DriverError, msgspec.ValidationError) as exc:
        return [str(exc)]
    driver = spec.factory(opts)
    if len({inspect.iscoroutinefunction(getattr(driver, m)) for m in ("open", "read", "close")}) > 1:
        problems.append("open/read/close must be all sync or all async")
    try:
        _call(driver.open)
        for _ in range(reads):
            problems += _check_reading(spec, _call(driver.read))
    except DriverError as exc:
        problems.append(f"life cycle raised {type(exc).__name__}: {exc}")
    finally:
        try:
            _call(driver.close)
            _call(driver.close)
        except Exception as exc:
            problems.append(f"close must be safe to call twice: {exc}")
    return problems
