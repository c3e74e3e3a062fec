"""Calibration, maintenance plans, energy per part, triggered captures and records surviving a
restart, against a real agent process and broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import AgentProcess, Subscriber, write_config

INSTANCES = """
[[instances]]
name = "probe"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "ramp", amplitude = 1000.0, period_s = 4000, channels = 1 }
options = { heartbeat_s = 0, report_by_exception = false }

[[instances]]
name = "meter"
plugin = "plc"
interval_s = 0.5
driver = { type = "modbus", backend = "sim", layout = "meter" }
options = { report_by_exception = false }

[[instances]]
name = "line1"
plugin = "production"
interval_s = 0.5
[instances.options]
total_count = { instance = "probe", key = "ch0" }
ideal_cycle_time_s = 0.9
energy_kwh = { instance = "meter", key = "energy_kwh" }
power_kw = { instance = "meter", key = "power_kw" }

[[instances]]
name = "maint"
plugin = "maintenance"
interval_s = 0.5
[[instances.options.assets]]
name = "press"
equipment = "10004711"
run = { instance = "probe", key = "ch0", above = 0.5 }
parts = { instance = "probe", key = "ch0" }
[[instances.options.assets.plans]]
id = "lube"
task = "Lubricate the main slide"
every_parts = 3
every_days = 30
# Due at 3 parts, overdue at 6: at 0.5 parts a second (the ramp at 0.25/s, calibrated 2 x raw + 1)
# an emulated Pi went from 2 to 4 parts between two looks and said only maintenance_overdue.
grace_percent = 100

[[instances]]
name = "rec"
plugin = "recorder"
interval_s = 1
[[instances.options.rules]]
name = "lube"
event = "maintenance_due"
record = ["probe"]
pre_s = 1.0
post_s = 0.5
holdoff_s = 600
"""


def cmd(sub: Subscriber, name: str, req: dict[str, Any], n: int = 1) -> list[dict[str, Any]]:
    topic = f"edge/t1/cmd/{name}/result"
    before = len(sub.on(topic))
    sub.client.publish(f"edge/t1/cmd/{name}", msgpack.packb(req), qos=1)
    sub.wait_for(lambda: len(sub.on(topic)) >= before + n, 10, f"answer to {name}")
    return [r.env["d"] for r in sub.on(topic)[before:]]


def events(sub: Subscriber, inst: str, kind: str) -> list[dict[str, Any]]:
    return [r.env["d"] for r in sub.on(f"edge/t1/event/{inst}") if r.env["d"]["kind"] == kind]


def test_maintenance_duties_end_to_end(tmp_path: Path, broker: LocalBroker) -> None:
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "state", instances=INSTANCES)
    sub = Subscriber(broker.url)
    proc = AgentProcess(cfg, broker.url)
    try:
        sub.wait_for(lambda: len(sub.on("edge/t1/data/probe")) >= 3, 20, "agent running")
        # a malformed calibration is refused and changes nothing
        bad = cmd(sub, "calibrate", {"id": 1, "instance": "probe", "args": {"channel": "nope", "by": "ann"}})[0]
        assert not bad["ok"] and "channel 'nope' is not a numeric value of instance 'probe'" in bad["error"]
        wild = cmd(
            sub,
            "calibrate",
            {"id": 2, "instance": "probe", "args": {"channel": "ch0", "by": "ann", "points": [[0, 0], [10, 100]]}},
        )[0]
        assert not wild["ok"] and "gain 10 is outside 0.5..2" in wild["error"]
        # two-point calibration: the corrected value is 2 x raw + 1
        rec = cmd(
            sub,
            "calibrate",
            {
                "id": 3,
                "instance": "probe",
                "args": {"channel": "ch0", "by": "ann", "points": [[0, 1], [10, 21]], "interval_days": 90},
            },
        )[0]
        assert rec["ok"], rec
        r = rec["result"]
        assert abs(r["coefficients"]["gain"] - 2) < 1e-9 and abs(r["coefficients"]["offset"] - 1) < 1e-9
        assert r["fit_residual"] == 0.0 and r["as_found_error"] == -11.0 and r["as_left_error"] is None
        sub.wait_for(lambda: bool(sub.on("edge/t1/calibration/probe/ch0")), 5, "retained calibration record")
        # maintenance plan falls due after 3 parts: a CMMS work request, then a capture of it
        sub.wait_for(lambda: bool(events(sub, "maint", "maintenance_due")), 20, "maintenance_due")
        wr = events(sub, "maint", "maintenance_due")[0]["work_request"]
        assert wr["asset"] == "press" and wr["plan"] == "lube" and wr["basis"] == "parts" and wr["equipment"]
        sub.wait_for(lambda: bool(events(sub, "rec", "capture_saved")), 10, "capture_saved")
        listed = cmd(sub, "captures", {"id": 4})[0]["result"]["captures"]
        got = cmd(sub, "capture_get", {"id": 5, "args": {"id": listed[0]["id"]}})[0]
        cap = msgpack.unpackb(got["data"], raw=False)
        rows = cap["series"]["probe"]["rows"]
        assert min(r["t_s"] for r in rows) < -0.5 and max(r["t_s"] for r in rows) > 0.2  # pre and post trigger
        assert "line1" in cap["snapshot"] and cap["meta"]["rule"] == "lube"
        done = cmd(
            sub,
            "maintenance_done",
            {"id": 6, "instance": "maint", "args": {"asset": "press", "plan": "lube", "by": "bob", "notes": "greased"}},
        )[0]
        assert done["ok"] and done["result"]["was"] in ("due", "overdue")
        # energy per part in the production message
        sub.wait_for(lambda: "energy_kwh" in sub.on("edge/t1/data/line1")[-1].env["d"].get("rolling", {}), 5, "energy")
        line = sub.on("edge/t1/data/line1")[-1].env["d"]
        assert line["rolling"]["energy_kwh"] > 0 and line["power_kw"] > 5
    finally:
        assert proc.stop() == 0
    # after a restart: the calibration still applies, the counters go on from where they were
    proc = AgentProcess(cfg, broker.url)
    try:
        n = len(sub.on("edge/t1/data/maint"))
        sub.wait_for(lambda: len(sub.on("edge/t1/data/maint")) > n + 1, 20, "maint after restart")
        parts_after = sub.on("edge/t1/data/maint")[-1].env["d"]["press"]["parts"]
        assert parts_after >= 3
        shown = cmd(sub, "calibrate", {"id": 7, "instance": "probe", "args": {"channel": "ch0", "action": "show"}})[0]
        assert shown["ok"] and shown["result"]["active"]["by"] == "ann"
    finally:
        assert proc.stop() == 0
        sub.close()


def _slope(sub: Subscriber, topic: str) -> float:
    """d(ch0)/dt over the last ~2 s of messages (the ramp rises 1 per second uncorrected)."""
    msgs = [m.env for m in sub.on(topic)][-25:]
    a, b = msgs[0], msgs[-1]
    return (b["d"]["ch0"] - a["d"]["ch0"]) / ((b["ts"] - a["ts"]) / 1000)


def test_a_calibration_survives_a_remote_config_push(agent: Any) -> None:
    from support import STEADY

    rec = cmd(
        agent.sub,
        "calibrate",
        {"id": 1, "instance": "steady", "args": {"channel": "ch0", "by": "ann", "points": [[0, 1], [10, 21]]}},
    )[0]
    assert rec["ok"], rec
    n = len(agent.sub.on("edge/t1/data/steady"))
    agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/steady")) > n + 25, 10, "calibrated data")
    assert abs(_slope(agent.sub, "edge/t1/data/steady") - 2.0) < 0.1  # corrected = 2 x raw + 1
    changed = {**STEADY, "interval_s": 0.08}
    assert agent.push({"version": 2, "config": {"instances": [changed]}})["status"] == "accepted"
    n = len(agent.sub.on("edge/t1/data/steady"))
    agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/steady")) > n + 30, 10, "data after the push")
    assert abs(_slope(agent.sub, "edge/t1/data/steady") - 2.0) < 0.1
    shown = cmd(agent.sub, "calibrate", {"id": 2, "instance": "steady", "args": {"channel": "ch0", "action": "show"}})
    assert shown[0]["result"]["active"]["by"] == "ann"
