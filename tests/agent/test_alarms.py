"""The alarm list (ISA-18.2 states), alarms that survive restarts, and the audit trail."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.alarms.model import AlarmState, alarm_change
from edge_agent.agent.alarms.service import REEVALUATE_DATA, AlarmList, AuditLog
from edge_agent.agent.slot_file import SlotFile
from edge_agent.plugins.common.alarms import AlarmConfig, AlarmSet
from edge_agent.plugins.contract import MemoryStore

LIMITS = [
    AlarmConfig(feature="motor_de.temp_c", level="high", limit=80.0, hysteresis=2.0),
    AlarmConfig(feature="motor_de.temp_c", level="high_high", limit=95.0, hysteresis=2.0),
]


def test_the_issue_example_high_and_high_high_survive_an_instance_restart() -> None:
    """high and high_high raised, the instance restarts: no second raise, and both clear later."""
    store = MemoryStore()
    before = AlarmSet(LIMITS, store, "thermo-a")
    raised = before.update({"motor_de.temp_c": 99.0}, 0.0)
    assert [(t.level, t.active) for t in raised] == [("high", True), ("high_high", True)]
    after = AlarmSet(LIMITS, store, "thermo-a")  # the restarted instance's plugin
    assert after.update({"motor_de.temp_c": 99.0}, 1.0) == []  # no duplicate raise
    cleared = after.update({"motor_de.temp_c": 50.0}, 2.0)
    assert [(t.level, t.active) for t in cleared] == [("high", False), ("high_high", False)]  # no lost clear
    assert AlarmSet(LIMITS, store, "thermo-a").active() == []


class Clock:
    def __init__(self) -> None:
        self.ms = 1_780_000_000_000

    def __call__(self) -> int:
        return self.ms


def alarm_event(active: bool, level: str = "high") -> tuple[str, str, str, str, dict[str, Any]]:
    fields = {"feature": "motor_de.temp_c", "level": level, "active": active, "value": 99.0, "limit": 80.0}
    return ("thermo-a", "alarm", "m", "alarm" if active else "info", fields)


def test_states_ack_clear_and_no_duplicate_raise(tmp_path: Path) -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    clock = Clock()
    alarms = AlarmList(tmp_path, lambda topic, d: published.append((topic, d)), clock)
    alarms.event(*alarm_event(True))
    alarms.event(*alarm_event(True))  # raised again while active: the same alarm
    (a,) = alarms.alarms.values()
    assert a.state is AlarmState.ACTIVE_UNACK and a.raises == 1 and len(published) == 1
    assert published[-1][1]["counts"]["active_unack"] == 1
    with pytest.raises(ValueError, match='needs "by"'):
        alarms.ack({"id": a.id})
    assert alarms.ack({"id": a.id, "by": "ana", "comment": "on it"}) == {"acknowledged": [a.id]}
    assert a.state is AlarmState.ACTIVE_ACK and a.ack_by == "ana"
    alarms.event(*alarm_event(False))
    assert alarms.alarms == {} and alarms.recent[-1]["state"] == "normal"  # acked and cleared: off the list
    alarms.event(*alarm_event(True, "high_high"))
    alarms.event(*alarm_event(False, "high_high"))
    (b,) = alarms.alarms.values()
    assert b.state is AlarmState.CLEARED_UNACK  # cleared before anyone looked: stays until acknowledged
    reloaded = AlarmList(tmp_path, lambda topic, d: None, clock)  # an agent restart
    assert reloaded.alarms[b.id].state is AlarmState.CLEARED_UNACK
    stored = SlotFile(tmp_path / "alarms.json").read()
    assert stored is not None and json.loads(stored)["recent"][0]["ack_by"] == "ana"
    assert not (tmp_path / "alarms.json").exists(), "written in place in its two slots, no file renamed"


def test_shelving_needs_a_reason_and_expires(tmp_path: Path) -> None:
    clock = Clock()
    alarms = AlarmList(tmp_path, lambda topic, d: None, clock)
    alarms.event(*alarm_event(True))
    (a,) = alarms.alarms.values()
    with pytest.raises(ValueError, match="comment"):
        alarms.shelve({"id": a.id, "by": "ana"})
    with pytest.raises(ValueError, match="for_s"):
        alarms.shelve({"id": a.id, "by": "ana", "comment": "x", "for_s": 10 * 86400})
    with pytest.raises(ValueError, match="no such alarm"):
        alarms.shelve({"id": "nope", "by": "ana", "comment": "x"})
    alarms.shelve({"id": a.id, "by": "ana", "comment": "sensor being replaced", "for_s": 60})
    assert alarms.summary()["counts"]["shelved"] == 1
    clock.ms += 61_000
    assert alarms.summary()["counts"]["shelved"] == 0


def test_a_shelve_lasts_its_time_across_clock_steps(tmp_path: Path) -> None:
    """Issue 29: +3 days does not end a one-hour shelve at once, -1 h does not stretch it."""
    clock = Clock()
    alarms = AlarmList(tmp_path, lambda topic, d: None, clock)
    alarms.event(*alarm_event(True))
    (a,) = alarms.alarms.values()
    alarms.shelve({"id": a.id, "by": "ana", "comment": "sensor being replaced", "for_s": 3600})
    for step_s in (3 * 86400, -3600):
        clock.ms += round(step_s * 1000)
        alarms.event("agent", "clock_step", "", "warning", {"step_s": step_s, "from_ms": 0, "to_ms": 0})
        assert alarms.summary()["counts"]["shelved"] == 1, step_s
    clock.ms += 3_599_000
    assert alarms.summary()["counts"]["shelved"] == 1
    clock.ms += 2_000
    assert alarms.summary()["counts"]["shelved"] == 0


def test_which_events_are_alarms() -> None:
    fault = alarm_change("plc1", "device_fault", "alarm", "m", {"quality": "comm_error"})
    ok = alarm_change("plc1", "device_ok", "info", "m", {})
    assert fault is not None and ok is not None and fault.id == ok.id == "plc1/device_fault"
    bearing = alarm_change("fan2", "bearing_fault", "alarm", "m", {"tone": "bpfo", "active": True})
    assert bearing is not None and bearing.name == "bearing bpfo fault"
    wr = {"asset": "pump1", "plan": "regrease"}
    overdue = alarm_change("maintenance", "maintenance_overdue", "alarm", "m", {"work_request": wr})
    done = alarm_change("maintenance", "maintenance_done", "info", "m", wr)
    assert overdue is not None and done is not None and overdue.id == done.id and not done.active
    assert overdue.name == "pump1 regrease overdue"
    cal = alarm_change("thermo-a", "calibration_due", "alarm", "m", {"channel": "motor_de", "overdue": True})
    calibrated = alarm_change("thermo-a", "calibrated", "info", "m", {"channel": "motor_de"})
    assert cal is not None and calibrated is not None and cal.id == calibrated.id
    assert alarm_change("plc1", "tag_fault", "warning", "m", {}) is None
    assert alarm_change("x", "state_change", "info", "m", {}) is None


def test_good_data_clears_a_fault_the_restarted_instance_never_saw(tmp_path: Path) -> None:
    alarms = AlarmList(tmp_path, lambda topic, d: None)
    alarms.event("plc1", "device_fault", "boom", "alarm", {})
    alarms.data("plc1", {"t": 1}, {"t": "comm_error"}, None)
    assert alarms.alarms["plc1/device_fault"].active
    alarms.data("plc1", {"t": 1}, None, None)
    assert not alarms.alarms["plc1/device_fault"].active


def test_audit_log_keeps_and_publishes_actions(tmp_path: Path) -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    log = AuditLog(tmp_path, lambda topic, d: published.append((topic, d)))
    log.event("agent", "sensor_fault", "m", "alarm", {})  # not an action
    fields = {"command": "ack", "by": "ana", "source": "mqtt", "instance": None, "args": {}, "outcome": "done"}
    log.event("agent", "audit", "ack by ana: done", "info", fields)
    assert published[-1][0] == "audit" and published[-1][1]["entries"][0]["by"] == "ana"
    got = asyncio.run(log.command("audit", {"since_s": 60}))
    assert [e["command"] for e in got["entries"]] == ["ack"]
    with pytest.raises(ValueError, match="limit"):
        asyncio.run(log.command("audit", {"limit": 0}))
    asyncio.run(log.close())
    again = AuditLog(tmp_path, lambda topic, d: None)
    assert again.entries()[0]["msg"] == "ack by ana: done"
    asyncio.run(again.close())


def test_actions_over_mqtt_are_audited_and_listed(tmp_path: Path, broker: Any) -> None:
    from support import RemoteAgent, cli, cmd

    agent = RemoteAgent(tmp_path, broker)
    try:
        refused = cmd(agent, "ack", {"id": 1, "args": {"id": "nope"}})
        assert not refused["ok"] and 'needs "by"' in refused["error"]
        assert cmd(agent, "restart", {"id": 2, "instance": "other", "by": "ana", "args": {"via": "panel"}})["ok"]
        pushed = agent.push({"version": 2, "config": {"instances": []}})
        assert pushed["status"] == "accepted", pushed
        listed = cmd(agent, "alarms", {"id": 3})["result"]
        assert listed["alarms"] == [] and listed["counts"]["active_unack"] == 0
        agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/audit")) >= 2, 10, "retained audit")
        shown = cli("audit", "t1", "--since", "1h", "--url", broker.url)
        assert shown.returncode == 0, shown.stderr
        assert "ana" in shown.stdout and "restart other" in shown.stdout and "panel" in shown.stdout
        assert "ack" in shown.stdout and "refused" in shown.stdout
        assert "config_push" in shown.stdout and "accepted" in shown.stdout  # pushes are actions too
        empty = cli("alarms", "t1", "--url", broker.url)
        assert empty.returncode == 0 and "(no alarms)" in empty.stdout
    finally:
        agent.close()


def test_sparkplug_sees_alarms_still_active_after_an_agent_restart(tmp_path: Path) -> None:
    """The plugin remembers the alarm and does not raise it again; the Sparkplug node, reborn, must
    still show Alarms/.../high = true: the alarm list replays it when the instance starts."""
    from edge_agent.agent.sparkplug.topics import event_flags

    AlarmList(tmp_path, lambda topic, d: None).event(*alarm_event(True))
    seen: list[tuple[str, str, dict[str, Any]]] = []

    class Node:
        def event(self, instance: str, kind: str, message: str, severity: str, fields: dict[str, Any]) -> None:
            seen.append((instance, kind, fields))

    restarted = AlarmList(tmp_path, lambda topic, d: None)
    restarted.replay_to.append(Node())
    restarted.instance_started("other", ())
    assert seen == []
    restarted.instance_started("thermo-a", ())
    ((instance, kind, fields),) = seen
    assert instance == "thermo-a"
    assert event_flags(kind, fields) == {"Alarms/motor_de/temp_c/high": True}


def test_cli_tables_stay_aligned_with_long_names() -> None:
    """A badge-long name or a long alarm name widens its column instead of shifting the next ones."""
    from edge_agent.agent.ops.alarms import alarm_table, audit_table

    entries = [
        {"ts_ms": 2000, "by": "demo", "args": {"via": "panel 127.0.0.1"}, "command": "ack", "outcome": "done"},
        {
            "ts_ms": 1000,
            "by": "demo technician (badge 4711)",
            "source": "mqtt",
            "command": "calibrate",
            "instance": "thermo-a",
            "outcome": "done",
        },
    ]
    lines = audit_table(entries).splitlines()
    assert lines[1].startswith("1970-01-01 00:00:01") and "badge 4711" in lines[1]  # oldest first
    via_at = {line.index(v) for line, v in zip(lines, ("via", "mqtt", "panel 127.0.0.1"), strict=True)}
    outcome_at = {line.index(v) for line, v in zip(lines, ("outcome", "done", "done"), strict=True)}
    assert len(via_at) == 1 and len(outcome_at) == 1, lines
    many = audit_table([dict(entries[0], ts_ms=i * 1000) for i in range(120)]).splitlines()
    assert len(many) == 121  # every entry asked for is shown
    name = "bearing_nde.rate_c_per_min rate_warning"
    alarm = {
        "state": "active_ack",
        "raised_ms": 0,
        "instance": "thermo-a",
        "name": name,
        "id": "x",
        "ack_by": "ana",
        "ack_ms": 0,
    }
    head, row, _ = alarm_table({"alarms": [alarm]}).splitlines()
    assert head.index("acknowledged") == row.index("ana"), (head, row)


def test_a_bearing_alarm_is_re_evaluated_after_a_restart(tmp_path: Path) -> None:
    # The vibration plugin keeps no memory of a bearing tone: after a restart the alarm is confirmed
    # by a new raise, or cleared once the instance has published enough windows without one.
    raised = {"tone": "bpfo", "active": True, "hz": 88.7}
    alarms = AlarmList(tmp_path, lambda topic, d: None)
    alarms.event("pump1-de", "bearing_fault", "BPFO", "alarm", raised)
    alarms.event("pump1-de", "machine_fault", "unbalance", "warning", {"fault": "unbalance", "active": True})
    aid = next(a for a in alarms.alarms if "bpfo" in a)
    assert len(alarms.alarms) == 2
    restarted = AlarmList(tmp_path, lambda topic, d: None)
    restarted.instance_started("pump1-de", None)
    restarted.event("pump1-de", "bearing_fault", "BPFO", "alarm", raised)  # still there: confirmed
    for _ in range(REEVALUATE_DATA):
        restarted.data("pump1-de", {"x": 1.0}, None, None)
    assert restarted.alarms[aid].active, "a confirmed alarm stays, raised once"
    assert restarted.alarms[aid].raises == 1
    gone = [a for a in restarted.alarms.values() if "unbalance" in a.id]
    assert gone and not gone[0].active and "re-evaluation" in gone[0].message
    assert gone[0].state is AlarmState.CLEARED_UNACK, "a person still acknowledges what happened"
