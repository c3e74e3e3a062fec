"""The supervisor: restart with backoff and an event; drift-free ticks; slow reads skip ticks."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import msgspec
from edge_agent.agent.config.schema import Instance
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.outbox import MemoryOutbox, Message
from edge_agent.agent.messaging.publisher import Publisher, Topics
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.runtime.supervisor import InstanceRunner, State
from edge_agent.drivers.lanes import Lanes
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins.contract import Options, Plugin, PluginSpec
from edge_agent.plugins.values.plugin import SPEC as VALUES


class CrashOptions(Options):
    crash_on: int = 3


class Crashy(Plugin):
    polls = 0

    async def poll(self) -> None:
        type(self).polls += 1
        if type(self).polls == self.ctx.options.crash_on:
            raise RuntimeError("boom on purpose")
        self.ctx.emit({"n": type(self).polls})


CRASHY = PluginSpec(name="crashy", factory=Crashy, options=CrashOptions, requires=None)


def _instance(name: str, spec: PluginSpec, interval_s: float, driver: dict[str, Any] | None = None) -> Instance:
    dopts = msgspec.convert(driver, SIM.options) if driver is not None else None
    return Instance(
        name,
        spec,
        SIM if driver is not None else None,
        interval_s,
        1,
        msgspec.convert({}, spec.options),
        dopts,
        {"name": name},
    )


def _drain(outbox: MemoryOutbox) -> list[Message]:
    """Everything queued, in creation order (nothing was sent: there is no session here)."""
    return sorted((m for q in outbox._queues.values() for m in q), key=lambda m: m.order)


async def _run(
    tmp_path: Path, runners_spec: list[Instance], seconds: float
) -> tuple[list[Message], list[InstanceRunner]]:
    outbox = MemoryOutbox(100_000)
    pub = Publisher(Topics("edge", "t"), SeqStore(tmp_path / "seq.sqlite"), outbox)
    lanes = Lanes()
    runners = [InstanceRunner(i, pub, lanes.get(i.name), backoff=(0.2, 0.4)) for i in runners_spec]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return _drain(outbox), runners


def test_crash_restarts_with_event_and_other_instance_keeps_cadence(tmp_path: Path) -> None:
    Crashy.polls = 0
    insts = [_instance("crashy", CRASHY, 0.05), _instance("steady", VALUES, 0.1, {"channels": 1, "profile": "ramp"})]
    msgs, runners = asyncio.run(_run(tmp_path, insts, 1.2))
    events = [codec.decode(m.payload)["d"] for m in msgs if m.topic == "edge/t/event/crashy"]
    assert events and events[0]["kind"] == "instance_error" and "boom on purpose" in events[0]["msg"]
    assert 0.1 <= events[0]["restart_in_s"] <= 0.2 + 1e-6  # float32 on the wire
    assert runners[0].stats.restarts == 1 and runners[0].state == State.STOPPED
    crash_msgs = [codec.decode(m.payload) for m in msgs if m.topic == "edge/t/data/crashy"]
    crash_data = [e["d"]["n"] for e in crash_msgs if e["d"]["n"] is not None]
    assert crash_data[:2] == [1, 2] and crash_data[2] == 4, "it restarted after the crash"
    held = [e for e in crash_msgs if e["d"]["n"] is None]
    assert held and all(e["q"] == {"n": "device_error"} for e in held), "during the backoff: null with a quality"
    steady = [codec.decode(m.payload) for m in msgs if m.topic == "edge/t/data/steady"]
    assert len(steady) >= 11, "the other instance kept its 10 Hz cadence during the crash and backoff"
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(steady)]
    assert max(gaps) < 250


class SlowOptions(Options):
    sleep_s: float = 0.25


class Slow(Plugin):
    async def poll(self) -> None:
        await asyncio.sleep(self.ctx.options.sleep_s)
        self.ctx.emit({"t": asyncio.get_running_loop().time()})


def test_slow_poll_skips_ticks_without_pile_up(tmp_path: Path) -> None:
    spec = PluginSpec(name="slow", factory=Slow, options=SlowOptions, requires=None)
    msgs, runners = asyncio.run(_run(tmp_path, [_instance("slow", spec, 0.1)], 1.05))
    stats = runners[0].stats
    assert 2 <= stats.polls <= 4, "a 0.25 s poll at 0.1 s interval runs every 3rd tick (4th under load)"
    assert stats.skipped_ticks >= 2 * (stats.polls - 1)
    times = [codec.decode(m.payload)["d"]["t"] for m in msgs]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # On the k x interval grid: 0.3 s on a quiet machine; a loaded one may skip one more tick (0.4 s),
    # never pile up (a gap under 0.3 s) or drift off the grid.
    on_grid = all(abs(g / 0.1 - round(g / 0.1)) < 0.2 and round(g, 1) >= 0.3 for g in gaps)
    assert on_grid, f"ticks stay on the k x interval grid: {gaps}"
