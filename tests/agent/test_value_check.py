"""Declared values enforced at run time (agent/runtime/value_check.py): junk from a driver or a
plugin becomes null with quality bad_value, one event per episode, state degraded; undeclared
keys are dropped and named once; a NaN the driver flagged keeps the driver's quality."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
from edge_agent.agent.config.schema import Instance
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.outbox import MemoryOutbox
from edge_agent.agent.messaging.publisher import Publisher, Topics
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.runtime.supervisor import InstanceRunner, State
from edge_agent.agent.runtime.value_check import BAD_VALUE, ValueGuard
from edge_agent.drivers.contract import Capability, DriverSpec, DType, Quality, Values, ValueSpec
from edge_agent.drivers.contract import Options as DriverOptions
from edge_agent.drivers.lanes import Lanes
from edge_agent.plugins.contract import Options, Plugin, PluginSpec
from edge_agent.plugins.values.plugin import SPEC as VALUES

SPECS = (
    ValueSpec("v", DType.FLOAT32, "V"),
    ValueSpec("n", DType.INT),
    ValueSpec("ok", DType.BOOL),
    ValueSpec("peaks", DType.FLOAT64, length=2),
    ValueSpec("tags.*", DType.FLOAT64),
)


def _guard() -> tuple[ValueGuard, list[tuple[str, str, dict[str, Any]]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    return ValueGuard("instance 'psu': driver 'junk'", SPECS, lambda *e: events.append(e)), events


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("v", "twelve"),
        ("v", [1, 2]),
        ("v", math.nan),
        ("v", math.inf),
        ("v", -math.inf),
        ("v", 1e39),  # an infinity once narrowed to float32
        ("v", True),
        ("n", 1.5),
        ("n", 2**70),  # no wire format carries it
        ("ok", 1),
        ("peaks", 1.0),
        ("peaks", [1.0, 2.0, 3.0]),
        ("peaks", [1.0, math.nan]),
        ("tags.a", "x"),
    ],
)
def test_a_bad_value_becomes_null_with_bad_value_and_one_event(key: str, value: Any) -> None:
    guard, events = _guard()
    other, fine = ("n", 1) if key != "n" else ("v", 1.0)
    for _ in range(3):  # one episode: one event
        values, quality = guard.check({key: value, other: fine}, None)
        assert dict(values) == {key: None, other: fine}
        assert quality == {key: BAD_VALUE}
    assert len(events) == 1
    kind, message, fields = events[0]
    assert kind == "bad_value" and "psu" in message and key in message
    assert fields["key"] == key and fields["declared"] and fields["got"].startswith(type(value).__name__)
    guard.check({key: None}, None)
    assert guard.bad == {key}, "a null is not a recovery"
    good = {"v": 1.0, "n": 1, "ok": True, "peaks": [1.0], "tags.a": 2.0}[key]
    assert guard.check({key: good}, None) == ({key: good}, None) and guard.bad == set()
    guard.check({key: value}, None)
    assert len(events) == 2, "a new episode, a new event"


def test_good_values_pass_unchanged_and_the_same_object() -> None:
    guard, events = _guard()
    values = {"v": 1, "n": 2, "ok": False, "peaks": [1.5, 2], "tags": {"a": 1.0, "b": 2}}
    assert guard.check(values, None)[0] is values and events == []


def test_undeclared_keys_are_dropped_and_named_once() -> None:
    guard, events = _guard()
    for _ in range(3):
        values, quality = guard.check({"v": 1.0, "extra": 3, "deep": {"x": 1}}, None)
        assert values == {"v": 1.0} and quality is None
    assert [(k, f["keys"]) for k, _, f in events] == [("undeclared_value", ["extra", "deep.x"])]


def test_a_nan_the_driver_flagged_keeps_its_quality_without_an_event() -> None:
    events: list[Any] = []
    guard = ValueGuard("d", SPECS, lambda *e: events.append(e), reading=True)
    reading = Values({"v": math.nan, "n": 3}, {"v": Quality.OPEN_CIRCUIT})
    assert guard.check_reading(reading) is reading, "the contract's missing number passes to the plugin"
    emit_guard, events = _guard()
    assert emit_guard.check({"v": math.nan}, {"v": "open_circuit"}) == ({"v": None}, {"v": "open_circuit"})
    assert events == []


def test_junk_in_a_reading_is_nan_for_a_number_with_the_contract_quality() -> None:
    events: list[Any] = []
    guard = ValueGuard("d", SPECS, lambda *e: events.append(e), reading=True)
    out = guard.check_reading(Values({"v": "twelve", "ok": 3, "n": 1}, {"n": Quality.STALE}))
    assert math.isnan(out.values["v"]) and out.values["ok"] is None and out.values["n"] == 1
    assert out.quality == {"v": Quality.BAD_VALUE, "ok": Quality.BAD_VALUE, "n": Quality.STALE}
    assert len(events) == 2


def test_a_source_that_declares_nothing_is_checked_for_nan_and_infinity_only() -> None:
    events: list[Any] = []
    guard = ValueGuard("x", None, lambda *e: events.append(e))
    assert guard.check({"a": "s", "b": [1, 2]}, None) == ({"a": "s", "b": [1, 2]}, None)
    assert guard.check({"a": math.inf}, None) == ({"a": None}, {"a": BAD_VALUE}) and len(events) == 1


# --- through a running instance ------------------------------------------------------------------


class JunkOptions(DriverOptions):
    pass


class JunkDriver:
    """Returns what the test puts in ``script``, one item per read."""

    script: list[dict[str, Any]] = []

    def __init__(self, options: JunkOptions) -> None:
        self.i = 0

    def open(self) -> None:
        pass

    def read(self) -> Values:
        item = self.script[min(self.i, len(self.script) - 1)]
        self.i += 1
        return Values(dict(item))

    def close(self) -> None:
        pass


JUNK = DriverSpec(
    name="junk",
    factory=JunkDriver,
    options=JunkOptions,
    provides=frozenset({Capability.VALUES}),
    values=lambda o: [ValueSpec("v", DType.FLOAT32, "V"), ValueSpec("i", DType.FLOAT32, "A")],
)


def _inst(plugin: PluginSpec, driver: DriverSpec | None, options: dict[str, Any]) -> Instance:
    return Instance(
        "psu",
        plugin,
        driver,
        0.02,
        1,
        msgspec.convert(options, plugin.options),
        JunkOptions() if driver is not None else None,
        {"name": "psu"},
    )


def _run(tmp_path: Path, inst: Instance, polls: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], State]:
    outbox = MemoryOutbox(10_000)
    pub = Publisher(Topics("edge", "t"), SeqStore(tmp_path / "seq.sqlite"), outbox)
    runner = InstanceRunner(inst, pub, Lanes().get(inst.name))
    states: list[State] = []

    async def main() -> None:
        task = asyncio.create_task(runner.run())
        while runner.stats.polls < polls:
            await asyncio.sleep(0.01)
        states.append(runner.state)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    msgs = sorted((m for q in outbox._queues.values() for m in q), key=lambda m: m.order)
    data = [codec.decode(m.payload) for m in msgs if m.topic == "edge/t/data/psu"]
    events = [codec.decode(m.payload)["d"] for m in msgs if m.topic == "edge/t/event/psu"]
    return data, events, states[0]


def test_junk_from_a_driver_is_null_with_bad_value_and_the_instance_degraded(tmp_path: Path) -> None:
    JunkDriver.script = [{"v": "twelve", "i": math.nan, "x": 1.0}]
    data, events, state = _run(tmp_path, _inst(VALUES, JUNK, {"heartbeat_s": 0}), 5)
    assert state is State.DEGRADED
    assert all(m["d"] == {"v": None, "i": None} and m["q"] == {"v": BAD_VALUE, "i": BAD_VALUE} for m in data)
    kinds = sorted(e["kind"] for e in events)
    assert kinds == ["bad_value", "bad_value", "undeclared_value"], events
    bad = {e["key"]: e for e in events if e["kind"] == "bad_value"}
    assert bad["v"]["got"] == "str 'twelve'" and bad["v"]["declared"] == "float32"
    assert bad["i"]["got"] == "float nan"


class EmitJunk(Plugin):
    async def poll(self) -> None:
        self.ctx.emit({"a": {"rms": math.inf, "peak": 1.0}, "b": 2.0})


EMIT_JUNK = PluginSpec(
    name="emitjunk",
    factory=EmitJunk,
    options=Options,
    requires=None,
    values=lambda o, d: [ValueSpec("a.rms", DType.FLOAT32), ValueSpec("a.peak", DType.FLOAT32)],
)


def test_what_a_plugin_emits_is_held_to_its_declaration(tmp_path: Path) -> None:
    data, events, state = _run(tmp_path, _inst(EMIT_JUNK, None, {}), 3)
    assert state is State.DEGRADED
    assert data[0]["d"] == {"a": {"rms": None, "peak": 1.0}} and data[0]["q"] == {"a.rms": BAD_VALUE}
    assert sorted(e["kind"] for e in events) == ["bad_value", "undeclared_value"]
