"""The plugin conformance kit: run over every built-in plugin, and shown to catch violations."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from conformance_cases import PLUGINS
from edge_agent.agent.config.registry import load_registry
from edge_agent.drivers.contract import Capability
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins.contract import Options, Plugin, PluginSpec
from edge_agent.plugins.testing import PluginConformance
from edge_agent.plugins.testing.conformance import check_plugin, check_registration, driver_declared_values
from edge_agent.plugins.values.plugin import SPEC as VALUES

REGISTRY = load_registry()
BUILTIN = sorted(n for n in REGISTRY.plugins if REGISTRY.origins[("plugin", n)].builtin)


def _driver(kind: str | None, options: dict[str, Any]) -> Any:
    if kind is None:
        return None
    spec = REGISTRY.drivers[kind]
    return lambda: spec.factory(msgspec.convert(options, spec.options))


def test_every_builtin_has_a_case() -> None:
    assert set(BUILTIN) == set(PLUGINS), "add the new plugin to tests/conformance_cases.py"


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_plugin_conforms(name: str) -> None:
    options, kind, driver_options = PLUGINS[name]
    spec = REGISTRY.plugins[name]
    declared = driver_declared_values(REGISTRY.drivers[kind], driver_options) if kind else []
    assert check_plugin(spec, options, driver=_driver(kind, driver_options), driver_values=declared) == []
    assert check_registration(spec) == []


class TestValuesByTheClass(PluginConformance):
    """The way an integrator runs the kit: subclass, set spec, options and the driver."""

    spec = VALUES
    options = {"heartbeat_s": 0}
    driver_spec = SIM
    driver_options = {"channels": 2}


class BadOptions(Options):
    mode: str = "ok"


class BadPlugin(Plugin):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        if ctx.options.mode == "factory":
            raise ValueError("factory blew up")

    async def poll(self) -> None:
        mode = self.ctx.options.mode
        try:
            reading = await self.ctx.read()
        except Exception:
            if mode == "swallow":
                return  # says nothing: the failure is invisible
            raise
        if mode == "hang":
            await asyncio.sleep(5)
        if mode == "bogus":
            self.ctx.emit({"level": 1.0}, {"level": "totally_bogus"})
        elif mode == "list":
            self.ctx.emit({"levels": [1, 2]})
        else:
            self.ctx.emit({"level": reading.values["ch0"]})


BAD = PluginSpec(name="bad", factory=BadPlugin, options=BadOptions, requires=Capability.VALUES)
SIM_DRIVER = _driver("sim", {})


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ok", "with failing reads: poll 1: raised CommError: conformance: injected read failure (catch it in poll"),
        ("factory", "factory: raised ValueError (factory blew up), not a DriverError"),
        ("bogus", "emit 1: quality 'totally_bogus' of 'level' is not one of"),
        ("list", "emit 1: value 'levels' is a list, not bool/int/float/str"),
        ("swallow", "with failing reads: no quality and no event"),
        ("hang", "poll 1: did not return within 0.5 s"),
    ],
)
def test_kit_reports_each_violation(mode: str, expected: str) -> None:
    problems = check_plugin(BAD, {"mode": mode}, driver=SIM_DRIVER, deadline_s=0.5)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_plugin_without_its_driver_is_reported() -> None:
    assert check_plugin(BAD, {}) == ["run: the plugin requires a values driver: pass driver="]
