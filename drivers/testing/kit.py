"""The driver conformance kit as a test class: subclass it, set ``spec`` and ``options``, done.

::

    from edge_agent.drivers.testing import DriverConformance
    from mychip_driver import SPEC

    class TestMyChipConformance(DriverConformance):
        spec = SPEC
        options = {"backend": "sim"}                       # the simulated backend
        failing_open_options = {"device": "/dev/i2c-99"}   # optional: options whose open() fails

pytest collects the inherited ``test_*`` methods, one per rule; a failure lists every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
from edge_agent.drivers.contract import DriverSpec
from edge_agent.drivers.testing.calls import Caller
from edge_agent.drivers.testing.conformance import (
    READ_DEADLINE_S,
    check_failed_open,
    check_life_cycle,
    check_options,
    check_read_before_open,
    check_registration,
    check_spec,
)


def _ok(problems: list[str]) -> None:
    assert not problems, "driver contract violations:\n  " + "\n  ".join(problems)


class DriverConformance:
    """Every rule of the driver contract, one test method each."""

    spec: ClassVar[DriverSpec]
    options: ClassVar[Mapping[str, Any]] = {"backend": "sim"}
    failing_open_options: ClassVar[Mapping[str, Any] | None] = None
    check_entry_point: ClassVar[bool] = True  # False for a spec that is not installed as a package
    reads: ClassVar[int] = 3
    read_deadline_s: ClassVar[float] = READ_DEADLINE_S

    def _opts(self, given: Mapping[str, Any]) -> Any:
        return msgspec.convert(dict(given), self.spec.options)

    def test_spec(self) -> None:
        _ok(check_spec(self.spec))

    def test_registration(self) -> None:
        if self.check_entry_point:
            _ok(check_registration(self.spec))

    def test_options_schema(self) -> None:
        _ok(check_options(self.spec.options, self.options))

    def test_read_before_open(self) -> None:
        with Caller() as call:
            _ok(check_read_before_open(self.spec, self._opts(self.options), call, self.read_deadline_s))

    def test_life_cycle(self) -> None:
        with Caller() as call:
            opts = self._opts(self.options)
            _ok(check_life_cycle(self.spec, opts, call, reads=self.reads, deadline_s=self.read_deadline_s))

    def test_close_after_failed_open(self) -> None:
        if self.failing_open_options is None:
            return  # nothing to check without options that make open() fail
        with Caller() as call:
            _ok(check_failed_open(self.spec, self._opts(self.failing_open_options), call, self.read_deadline_s))
