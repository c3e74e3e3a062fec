"""The shared mechanisms: limit alarms (hysteresis, on-delay) and report by exception; the
system and values plugins through the plugin test harness."""

from __future__ import annotations

import asyncio

from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.drivers.sim.driver import SimDriver, SimOptions
from edge_agent.plugins.common.alarms import Alarm, AlarmConfig, AlarmSet, Direction
from edge_agent.plugins.common.report_by_exception import Deadband, ReportByException
from edge_agent.plugins.contract import AgentInfo
from edge_agent.plugins.system.plugin import SPEC as SYSTEM
from edge_agent.plugins.testing.harness import Harness
from edge_agent.plugins.values.plugin import SPEC as VALUES


def test_alarm_hysteresis_and_on_delay_do_not_chatter() -> None:
    alarm = Alarm(AlarmConfig(feature="t", limit=80.0, hysteresis=2.0, on_delay_s=3.0))
    script = [79, 81, 79.5, 81, 81, 81, 81, 79, 78.5, 77.9, 81]  # one value per second
    transitions = [(t, tr.active) for t, v in enumerate(script) if (tr := alarm.update(v, float(t)))]
    # 81 at t=1 breaks at t=2 (79.5 is back under) -> the delay restarts at t=3 and raises at t=6;
    # it clears only at 77.9 (<= 80 - 2), not at 79 or 78.5.
    assert transitions == [(6, True), (9, False)]


def test_low_alarm_boundary_and_bad_values() -> None:
    alarm = Alarm(AlarmConfig(feature="p", limit=1.0, direction=Direction.LOW, level="low"))
    assert alarm.update(1.0, 0) is None  # exactly on the limit is not beyond it
    assert alarm.update(float("nan"), 1) is None
    raised = alarm.update(0.99, 2)
    assert raised is not None and raised.active and raised.level == "low"
    assert AlarmSet([alarm.cfg]).update({"p": True}, 3) == []  # booleans are not levels


def test_report_by_exception_deadband_heartbeat_quality() -> None:
    rbe = ReportByException(
        heartbeat_s=10, default=Deadband(absolute=0.5), bands={"pct": Deadband(percent=1.0, span=200.0)}
    )
    assert rbe.filter({"a": 1.0, "pct": 50.0}, {}, 0) == ({"a": 1.0, "pct": 50.0}, {})
    assert rbe.filter({"a": 1.4, "pct": 51.9}, {}, 1) == ({}, {})  # inside both bands
    assert rbe.filter({"a": 1.6, "pct": 52.1}, {}, 2) == ({"a": 1.6, "pct": 52.1}, {})  # drift accumulated
    assert rbe.filter({"a": 1.6}, {"a": "timeout"}, 3) == ({"a": 1.6}, {"a": "timeout"})  # quality change
    assert rbe.filter({"a": 1.6}, {}, 4) == ({"a": 1.6}, {})  # back to good is reported too
    assert rbe.filter({"a": 1.6, "pct": 52.1}, {}, 12.5) == ({"pct": 52.1}, {})  # heartbeat of pct only
    assert rbe.filter({"a": 1.6}, {}, 14.1) == ({"a": 1.6}, {})


def test_values_plugin_faults_become_quality_and_one_event() -> None:
    async def go() -> Harness:
        drv = SimDriver(SimOptions(profile="ramp", amplitude=100, fail_reads=[3, 4], channels=2))
        h = Harness(VALUES, options={"heartbeat_s": 0}, driver=drv)
        await h.start()
        await h.poll(times=6, advance_s=1)
        await h.close()
        return h

    h = asyncio.run(go())
    assert [e.kind for e in h.events] == ["sensor_fault", "sensor_ok"]
    assert h.events[0].fields == {"quality": "comm_error"}
    faulted = [e for e in h.emitted if e.quality]
    assert faulted and faulted[0].values == {"ch0": None, "ch1": None}, "no stale value republished as fresh"
    assert faulted[0].quality == {"ch0": "comm_error", "ch1": "comm_error"}
    assert SIM.name == "sim"


def test_system_plugin_reports_host_and_agent_figures() -> None:
    stats = {
        "uptime_s": 5.0,
        "queue_depth": 2,
        "sent": 10,
        "bytes_sent": 900,
        "reconnects": 0,
        "connected": True,
        "dropped": {"data": 1, "event": 0, "state": 0},
    }

    async def go() -> Harness:
        h = Harness(SYSTEM, options={"disk_path": "/"}, agent=AgentInfo(stats=lambda: stats))
        await h.poll()
        await asyncio.sleep(0.1)  # /proc/stat counts in 10 ms jiffies
        await h.poll()
        return h

    h = asyncio.run(go())
    first, second = h.emitted[0].values, h.emitted[1].values
    assert {"load_1m", "rss_mb", "disk_free_mb", "disk_free_pct", "mem_used_pct", "queue_depth"} <= set(first)
    assert first["dropped"] == 1 and first["sent"] == 10
    assert "agent_cpu_pct" in second and "cpu_pct" in second  # rates need two snapshots


def test_snapshot_heartbeat_sends_everything_together() -> None:
    rbe = ReportByException(heartbeat_s=10, snapshot=True)
    assert rbe.filter({"a": 1, "b": 2}, {}, 0) == ({"a": 1, "b": 2}, {})
    assert rbe.filter({"a": 5, "b": 2}, {}, 4) == ({"a": 5}, {})
    assert rbe.filter({"a": 5, "b": 2}, {}, 9) == ({}, {})
    assert rbe.filter({"a": 5, "b": 2}, {}, 10) == ({"a": 5, "b": 2}, {}), "one message with the full state"


def test_local_link_merges_nested_values() -> None:
    from edge_agent.agent.messaging.publisher import LocalLink

    link = LocalLink()
    link.store("t", {"bearing": {"temp_c": 50.0, "rate_c_per_min": 0.5}})
    link.store("t", {"bearing": {"temp_c": 51.0}})
    assert link.latest("t", "bearing.rate_c_per_min")[0] == 0.5  # type: ignore[index]
    assert link.latest("t", "bearing.temp_c")[0] == 51.0  # type: ignore[index]


def test_heartbeat_zero_publishes_every_poll() -> None:
    """docs/config.md: ``heartbeat_s = 0`` means every poll (issue 20 item 1): five polls of a
    constant are five messages, in the values plugin as in the shared filter."""
    rbe = ReportByException(heartbeat_s=0)
    assert [rbe.filter({"a": 1.0}, {}, float(t))[0] for t in range(5)] == [{"a": 1.0}] * 5
    never = ReportByException(heartbeat_s=None)
    assert [bool(never.filter({"a": 1.0}, {}, float(t))[0]) for t in range(5)] == [True] + [False] * 4

    async def go() -> Harness:
        h = Harness(VALUES, options={"heartbeat_s": 0}, driver=SimDriver(SimOptions(profile="constant")))
        await h.start()
        await h.poll(times=5, advance_s=1)
        await h.close()
        return h

    assert len(asyncio.run(go()).emitted) == 5
