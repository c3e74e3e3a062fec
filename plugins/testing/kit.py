"""The plugin conformance kit as a test class: subclass it, set the spec, options and driver.

::

    from edge_agent.plugins.testing import PluginConformance
    from edge_agent.drivers.sim.driver import SPEC as SIM

    class TestMyPluginConformance(PluginConformance):
        spec = SPEC
        options = {"threshold": 2.0}
        driver_spec = SIM                      # the driver it runs on, with its simulated backend
        driver_options = {"channels": 2}

pytest collects the inherited ``test_*`` methods, one per rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
from edge_agent.drivers.contract import Driver, DriverSpec
from edge_agent.plugins.contract import PluginSpec
from edge_agent.plugins.testing.conformance import (
    POLL_DEADLINE_S,
    check_driver_faults,
    check_options,
    check_registration,
    check_run,
    check_spec,
    driver_declared_values,
)


def _ok(problems: list[str]) -> None:
    assert not problems, "plugin contract violations:\n  " + "\n  ".join(problems)


class PluginConformance:
    """Every rule of the plugin contract, one test method each."""

    spec: ClassVar[PluginSpec]
    options: ClassVar[Mapping[str, Any]] = {}
    driver_spec: ClassVar[DriverSpec | None] = None
    driver_options: ClassVar[Mapping[str, Any]] = {"backend": "sim"}
    check_entry_point: ClassVar[bool] = True
    polls: ClassVar[int] = 3
    interval_s: ClassVar[float] = 1.0
    poll_deadline_s: ClassVar[float] = POLL_DEADLINE_S

    def make_driver(self) -> Driver | None:
        """The driver the plugin runs on (override for anything but ``driver_spec`` + ``driver_options``)."""
        if self.driver_spec is None:
            return None
        return self.driver_spec.factory(msgspec.convert(dict(self.driver_options), self.driver_spec.options))

    def _factory(self) -> Any:
        return (
            None
            if self.driver_spec is None and type(self).make_driver is PluginConformance.make_driver
            else self.make_driver
        )

    def test_spec(self) -> None:
        _ok(check_spec(self.spec))

    def test_registration(self) -> None:
        if self.check_entry_point:
            _ok(check_registration(self.spec))

    def test_options_schema(self) -> None:
        _ok(check_options(self.spec.options, self.options))

    def test_start_poll_close(self) -> None:
        declared = [] if self.driver_spec is None else driver_declared_values(self.driver_spec, self.driver_options)
        kw: dict[str, Any] = {"polls": self.polls, "interval_s": self.interval_s, "deadline_s": self.poll_deadline_s}
        _ok(check_run(self.spec, self.options, self._factory(), driver_values=declared, **kw))

    def test_driver_errors_become_quality_or_event(self) -> None:
        factory = self._factory()
        if factory is not None:
            _ok(check_driver_faults(self.spec, self.options, factory, polls=self.polls, interval_s=self.interval_s))
