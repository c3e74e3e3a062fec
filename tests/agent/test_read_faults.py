"""A sensor failing from power-up still reports (issue 24, item 2): its declared keys as null with
the error's quality at its cadence (report by exception and heartbeat as for any value), state
degraded with why, one sensor_fault with count and at, sensor_ok when it reads again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
from edge_agent.agent.config.schema import Instance
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.outbox import MemoryOutbox
from edge_agent.agent.messaging.publisher import Publisher, Topics
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.runtime.supervisor import InstanceRunner, State
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.lanes import Lanes
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins.contract import Options, Plugin, PluginSpec
from edge_agent.plugins.values.plugin import SPEC as VALUES


def _run(
    tmp_path: Path, fail_reads: list[int], polls: int, options: dict[str, Any], plugin: PluginSpec = VALUES
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[State, str]]]:
    inst = Instance(
        "psu",
        plugin,
        SIM,
        0.02,
        1,
        msgspec.convert(options, plugin.options),
        msgspec.convert({"channels": 2, "fail_reads": fail_reads}, SIM.options),
        {"name": "psu"},
    )
    outbox = MemoryOutbox(10_000)
    pub = Publisher(Topics("edge", "t"), SeqStore(tmp_path / "seq.sqlite"), outbox)
    states: list[tuple[State, str]] = []
    runner = InstanceRunner(inst, pub, Lanes().get("psu"), on_state=lambda r: states.append((r.state, r.info.why)))

    async def main() -> None:
        task = asyncio.create_task(runner.run())
        while runner.stats.polls < polls:
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    msgs = sorted((m for q in outbox._queues.values() for m in q), key=lambda m: m.order)
    data = [codec.decode(m.payload) for m in msgs if m.topic == "edge/t/data/psu"]
    events = [codec.decode(m.payload)["d"] for m in msgs if m.topic == "edge/t/event/psu"]
    return data, events, states


def test_a_sensor_dead_from_power_up_publishes_its_declared_keys_as_null(tmp_path: Path) -> None:
    data, events, states = _run(tmp_path, list(range(1, 1000)), 6, {"heartbeat_s": 0})
    assert len(data) >= 6, "every poll: heartbeat_s = 0 sends every value every poll"
    assert all(
        m["d"] == {"ch0": None, "ch1": None} and m["q"] == {"ch0": "comm_error", "ch1": "comm_error"} for m in data
    )
    assert [e["kind"] for e in events] == ["sensor_fault"], "one episode, one alarm"
    assert events[0]["count"] == 1 and events[0]["at"].startswith("edge_agent.drivers.sim.driver:")
    assert events[0]["quality"] == "comm_error"
    state, why = states[-2]  # the last one: stopped (the test cancels it)
    assert state is State.DEGRADED and "read() of driver 'sim' failed: CommError" in why


def test_its_nulls_follow_report_by_exception_and_recovery_gives_sensor_ok(tmp_path: Path) -> None:
    data, events, states = _run(tmp_path, [1, 2, 3, 4, 5], 9, {"heartbeat_s": 60})
    nulls = [m for m in data if m["d"]["ch0"] is None]
    assert len(nulls) == 1, "by exception: the nulls once, then not again within the heartbeat"
    assert any(m["d"]["ch0"] is not None for m in data)
    assert [e["kind"] for e in events] == ["sensor_fault", "sensor_ok"]
    assert states[-2] == (State.RUNNING, "") and states[-1][0] is State.STOPPED


class Quiet(Plugin):
    """Swallows a failed read and says nothing: the agent raises the episode's alarm and ends it."""

    async def poll(self) -> None:
        try:
            reading = await self.ctx.read()
        except DriverError:
            return
        self.ctx.emit(dict(reading.values))


QUIET = PluginSpec(name="quiet", factory=Quiet, options=Options, requires=None, values=lambda o, d: d)


def test_a_plugin_that_says_nothing_gets_the_agents_alarm_and_sensor_ok(tmp_path: Path) -> None:
    data, events, _ = _run(tmp_path, [1, 2, 3], 6, {}, plugin=QUIET)
    assert [e["kind"] for e in events] == ["sensor_fault", "sensor_ok"], events
    assert events[0]["count"] == 1 and events[0]["quality"] == "comm_error" and events[0]["at"]
    assert "read() of driver 'sim' failed" in events[0]["msg"]
    assert data[0]["d"] == {"ch0": None, "ch1": None} and data[0]["q"] == {"ch0": "comm_error", "ch1": "comm_error"}
