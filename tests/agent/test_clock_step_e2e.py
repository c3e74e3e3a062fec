"""A wall clock that jumps under a running agent (issue 29): the agent under libfaketime (Debian's
``faketime``, ``make sysdeps``), its wall clock stepped through the control file by -1 h, +3 h and
+3 days while its monotonic clock runs on. Each step is one ``clock_step`` event saying by how much;
the data keeps its pace (no storm, no pause) and its seq numbers run on without gap or repeat; the
shift reports book only time that passed; history stays in order and lists the steps; running
hours count no jumped hour; a calibration and a calendar plan past due say so once; Sparkplug (as
Eclipse Tahu's codec reads it) keeps its session rules and says whether the clock is synchronised."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.clock_watch import synchronised
from edge_agent.agent.devtools.local_broker import LocalBroker
from spb_rules import Recorder, tahu_available, tahu_decode, value_of, violations
from support import BASE, AgentProcess, Subscriber, write_config

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
STEPS = (("-1h", -3600.0), ("+2h", 3 * 3600.0), ("+74h", 3 * 86400.0))  # offsets from real time, each step's size
DAY_MS = 86_400_000

pytestmark = [
    pytest.mark.skipif(not FAKETIME.exists(), reason="libfaketime not installed (make sysdeps)"),
    pytest.mark.skipif(not tahu_available(), reason="needs node and `make npm` (Tahu's sparkplug-payload)"),
]


def _hhmm(t: dt.datetime) -> str:
    return t.strftime("%H:%M")


def plant(now: dt.datetime) -> str:
    """BASE, plus a line whose shift "a" began 30 min ago and ends in 2 h (when "b" begins), a
    maintenance asset with an hours plan and a 2-day plan, and Sparkplug and history on."""
    a_start, b_start = now - dt.timedelta(minutes=30), now + dt.timedelta(hours=2)
    return (
        BASE
        + f"""
[[instances]]
name = "line1"
plugin = "production"
interval_s = 0.5
[instances.options]
total_count = {{ instance = "steady", key = "ch0" }}
ideal_cycle_time_s = 0.9
shifts = [{{ name = "a", start = "{_hhmm(a_start)}", end = "{_hhmm(b_start)}" }},
          {{ name = "b", start = "{_hhmm(b_start)}", end = "{_hhmm(a_start)}" }}]

[[instances]]
name = "maint"
plugin = "maintenance"
interval_s = 0.5
[[instances.options.assets]]
name = "press"
run = {{ instance = "steady", key = "ch0", above = -1.0 }}
[[instances.options.assets.plans]]
id = "oil"
task = "Change the oil"
every_hours = 1000
[[instances.options.assets.plans]]
id = "look"
task = "Look at the guard"
every_days = 2
"""
    )


EXTRA = """
[history]
commit_interval_s = 1
[sparkplug]
enabled = true
group_id = "plant"
health_interval_s = 1
"""


def events(sub: Subscriber, inst: str, kind: str) -> list[dict[str, Any]]:
    return [r.env["d"] for r in sub.on(f"edge/t1/event/{inst}") if r.env["d"].get("kind") == kind]


def ask(sub: Subscriber, name: str, req: dict[str, Any]) -> dict[str, Any]:
    topic = f"edge/t1/cmd/{name}/result"
    before = len(sub.on(topic))
    sub.client.publish(f"edge/t1/cmd/{name}", msgpack.packb(req), qos=1)
    sub.wait_for(lambda: len(sub.on(topic)) > before, 15, f"answer to {name}")
    answer = sub.on(topic)[before].env["d"]
    assert answer["ok"], answer
    return answer["result"]  # type: ignore[no-any-return]


def test_clock_steps_are_events_and_nothing_storms(tmp_path: Path, broker: LocalBroker, subscriber: Subscriber) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(FAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    cfg = tmp_path / "agent.toml"
    write_config(cfg, state_dir=tmp_path / "state", instances=plant(dt.datetime.now(dt.UTC)), extra=EXTRA)
    cfg.write_text(cfg.read_text().replace("[agent]\n", "[agent]\nstate_flush_s = 1\n", 1))  # due checks each second
    spb = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url, extra_env=env)
    steps = lambda: events(subscriber, "agent", "clock_step")  # noqa: E731
    data = lambda: subscriber.on("edge/t1/data/steady")  # noqa: E731
    try:
        subscriber.wait_for(lambda: len(data()) >= 10 and subscriber.on("edge/t1/data/maint"), 30, "the first data")
        cal = {"channel": "ch0", "by": "ann", "points": [[0, 0], [10, 10]], "interval_days": 2, "warn_days": 0}
        ask(subscriber, "calibrate", {"id": 1, "instance": "steady", "args": cal})
        for i, (text, _) in enumerate(STEPS):
            offset.write_text(text + "\n")
            subscriber.wait_for(lambda i=i: len(steps()) > i, 15, f"clock_step {i + 1}")
            before = len(data())
            subscriber.wait_for(lambda before=before: len(data()) >= before + 10, 15, "data after the step")
        shift_ends = lambda: events(subscriber, "line1", "shift_end")  # noqa: E731
        subscriber.wait_for(lambda: len(shift_ends()) >= 2, 15, "the shifts the steps ended")
        subscriber.wait_for(lambda: events(subscriber, "steady", "calibration_due"), 15, "calibration_due")
        time.sleep(3.0)  # three more state flushes (due checks) and health checks: no repeat
        history = ask(subscriber, "history", {"id": 2, "instance": "steady", "args": {
            "keys": ["ch0"], "from_ms": 0, "until_ms": int(time.time() * 1000) + 80 * 3_600_000,
            "resolution": "minute"}})  # fmt: skip
        reports = ask(subscriber, "report", {"id": 3, "args": {"line": "line1", "limit": 5}})["reports"]
    finally:
        assert agent.stop() == 0, agent.log()[-3000:]
        spb.close()
    took_s = time.monotonic() - agent.started

    # the messages: one event per step, of its size; seq without gap; the pace; ts steps once per step
    got = [e["step_s"] for e in steps()]
    assert len(got) == len(STEPS), f"one event per step: {got}"
    for step_s, (_, want) in zip(got, STEPS, strict=True):
        assert abs(step_s - want) < 30, (step_s, want)
    msgs = data()
    seqs = [m.env["seq"] for m in msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq continuity across the steps"
    per_s: dict[int, int] = {}  # the pace by arrival (the test's own clock): 10 Hz, no second holds a storm
    for m in msgs:
        per_s[int(m.at)] = per_s.get(int(m.at), 0) + 1
    assert max(per_s.values()) <= 20, f"a burst after a step: {sorted(per_s.items())}"
    ev_per_s: dict[int, list[str]] = {}  # every event of every instance: no storm after a step either
    for m in subscriber.messages:
        if m.topic.startswith("edge/t1/event/"):
            ev_per_s.setdefault(int(m.at), []).append(f"{m.topic.rsplit('/', 1)[1]}:{m.env['d'].get('kind')}")
    assert max(len(v) for v in ev_per_s.values()) <= 10, f"an event storm: {max(ev_per_s.values(), key=len)}"
    stamps = [m.env["ts"] for m in msgs]
    jumps = [b - a for a, b in itertools.pairwise(stamps) if abs(b - a) > 60_000]
    assert len(jumps) == len(STEPS), f"the ts of the data steps with the clock, once per step: {jumps}"
    synced = synchronised() is not False  # the agent asks the same kernel
    assert {m.env.get("tq") for m in msgs} == ({None} if synced else {"unsynced"}), "tq says what the kernel says"

    # the shift reports: one per shift the steps ended, only the time that passed booked
    ends = [e for e in events(subscriber, "line1", "shift_end")]
    assert [e["name"] for e in ends] == ["a", "b"], "one end per shift, no storm of the shifts skipped over"
    for e in ends:
        booked_s = sum(e[f"{s}_s"] for s in ("running", "idle", "fault", "planned_stop"))
        assert 0 <= booked_s <= took_s, f"shift {e['name']} booked {booked_s} s of a {took_s:.0f}-s run"
        assert dt.datetime.fromisoformat(e["ended"]) >= dt.datetime.fromisoformat(e["started"]), e
    by_shift = {r["shift"]: r for r in reports}
    assert set(by_shift) == {"a", "b"}, [r["shift"] for r in reports]
    listed = [[round(c["step_s"], -2) for c in by_shift[n]["clock_steps"]] for n in ("a", "b")]
    assert listed == [[-3600, 10800], [259200]], f"each step in the report of the shift it happened in: {listed}"
    for r in reports:
        assert all(p["duration_s"] >= 0 for p in r["not_monitored"]["periods"]), r["not_monitored"]
        assert all(a["duration_s"] >= 0 for a in r["alarms"] + r["diagnoses"]), r

    # history: ordered, no minute with samples of two clocks (10 Hz: <= 600 a minute), the steps listed
    points = history["series"]["ch0"]["points"]
    times = [p[0] for p in points]
    assert times == sorted(times) and len(times) == len(set(times)), "ordered, one row per minute"
    assert max(p[5] for p in points) <= 600, "no minute counted twice"
    assert [round(c["step_s"], -2) for c in history["clock_steps"]] == [-3600, 10800, 259200], history["clock_steps"]

    # maintenance: no jumped hour counted, the 2-day plan and the calibration past due said once each
    press = subscriber.on("edge/t1/data/maint")[-1].env["d"]["press"]
    assert 0 < press["running_h"] * 3600 <= took_s, f"running hours {press['running_h']} of a {took_s:.0f}-s run"
    overdue = [e["work_request"]["plan"] for e in events(subscriber, "maint", "maintenance_overdue")]
    assert overdue == ["look"] and not events(subscriber, "maint", "maintenance_due"), overdue
    assert press["plans"]["oil"]["status"] == "ok" and press["plans"]["look"]["status"] == "overdue"
    cal_due = events(subscriber, "steady", "calibration_due")
    assert [e["overdue"] for e in cal_due] == [True], "one overdue calibration, no reminder per day skipped"

    # Sparkplug, decoded by Eclipse Tahu's codec: the session rules hold, the node says the clock's state
    decoded = tahu_decode(spb.msgs)
    assert violations(decoded) == []
    nbirth = next(r for r in decoded if r["topic"].split("/")[2] == "NBIRTH")
    clock_metric = next(m for m in nbirth["raw"]["metrics"] if m.get("name") == "Health/Clock Synchronised")
    assert value_of(clock_metric, 11) is synced, clock_metric
    ddata = [r for r in decoded if r["topic"] == "spBv1.0/plant/DDATA/t1/steady"]
    ts = [int(m["timestamp"]) for r in ddata for m in r["raw"]["metrics"]]
    assert len([b - a for a, b in itertools.pairwise(ts) if abs(b - a) > 60_000]) == len(STEPS), "metric times step"
