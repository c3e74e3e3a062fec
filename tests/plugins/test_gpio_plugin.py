"""The gpio plugin with the gpio driver on gpiozero's MockFactory."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from edge_agent.drivers.gpio.driver import GpioDriver, GpioOptions
from edge_agent.plugins.gpio.plugin import SPEC, GpioPluginOptions, OutputRule, check, rule_wants_on
from edge_agent.plugins.testing.harness import Harness, StaticLink
from gpiozero.pins.mock import MockFactory


def driver(**kw: Any) -> tuple[GpioDriver, MockFactory]:
    f = MockFactory()
    o = msgspec.convert({"backend": "mock", **kw}, GpioOptions)
    return GpioDriver(o, pin_factory=f), f


def test_counts_and_states_are_published_by_exception() -> None:
    d, f = driver(
        inputs=[
            {"name": "part_count", "pin": 6, "kind": "counter", "debounce_s": 0},
            {"name": "guard_closed", "pin": 7, "debounce_s": 0},
            {"name": "shaft_rpm", "pin": 5, "kind": "tachometer", "pull": "down"},
        ]
    )
    h = Harness(SPEC, options={"heartbeat_s": 3600}, driver=d)

    async def main() -> None:
        await h.start()
        await h.poll()
        await h.poll()  # nothing changed: nothing published
        for _ in range(3):
            f.pin(6).drive_low()
            f.pin(6).drive_high()
        await h.poll()
        f.pin(7).drive_low()
        await h.poll()
        await h.close()

    asyncio.run(main())
    assert [e.values for e in h.emitted] == [
        {"part_count": 0, "guard_closed": False, "shaft_rpm": 0.0},
        {"part_count": 3},
        {"guard_closed": True},
    ]
    assert set(h.plugin.rbe._bands) == {"shaft_rpm"}  # type: ignore[attr-defined]


def test_output_rules_drive_a_stack_light_from_another_instance() -> None:
    d, f = driver(outputs=[{"name": "stack_red", "pin": 20}])
    link = StaticLink()
    options = {
        "outputs": [{"output": "stack_red", "source": {"instance": "pump", "key": "x.velocity_rms_mm_s"}, "above": 7.1}]
    }
    h = Harness(SPEC, options=options, driver=d, link=link)
    states = []

    async def main() -> None:
        await h.start()
        for v in (2.0, 7.5, 7.6, 3.0):
            link.values[("pump", "x.velocity_rms_mm_s")] = v
            await h.poll()
            states.append(f.pin(20).state)
        await h.close()

    asyncio.run(main())
    assert states == [False, True, True, False]
    assert [(e.kind, e.message) for e in h.events] == [
        ("output", "stack_red on"),
        ("output", "stack_red off"),
    ]
    assert f.pin(20).state is False  # off after close


def test_driver_fault_is_one_event_and_rules_are_checked() -> None:
    d, _ = driver(inputs=[{"name": "a", "pin": 6}])
    h = Harness(SPEC, driver=d)
    asyncio.run(h.poll(times=3))  # never opened: every read fails
    assert [e.kind for e in h.events] == ["sensor_fault"]
    rule = msgspec.convert({"output": "o", "source": {"instance": "i", "key": "k"}, "below": 5, "above": 1}, OutputRule)
    assert rule_wants_on(rule, 0.5) and rule_wants_on(rule, 6) is True and not rule_wants_on(rule, None)
    opts = msgspec.convert({"outputs": [msgspec.to_builtins(rule)]}, GpioPluginOptions)
    assert check(opts, "gpio") == ["outputs[0].below: must not exceed above when both are set"]
