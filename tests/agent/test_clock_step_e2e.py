"""A wall clock that jumps under a running agent (issue 29): the agent under libfaketime (Debian's
``faketime``, ``make sysdeps``), its wall clock stepped through the control file by -1 h, +3 h and
+3 days while its monotonic clock runs on. Each step is one ``clock_step`` event saying by how much;
the data keeps its pace (no storm, no pause) and its seq numbers run on without gap or repeat."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import BASE, AgentProcess, Subscriber, write_config

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
STEPS = (("-1h", -3600.0), ("+2h", 3 * 3600.0), ("+74h", 3 * 86400.0))  # offsets from real time, each step's size

pytestmark = pytest.mark.skipif(not FAKETIME.exists(), reason="libfaketime not installed (make sysdeps)")


def test_clock_steps_are_events_and_nothing_storms(tmp_path: Path, broker: LocalBroker, subscriber: Subscriber) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(FAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    cfg = write_config(tmp_path / "agent.toml", state_dir=tmp_path / "state", instances=BASE)
    agent = AgentProcess(cfg, broker.url, extra_env=env)
    steps = lambda: [m for m in subscriber.on("edge/t1/event/agent") if m.env["d"].get("kind") == "clock_step"]  # noqa: E731
    data = lambda: subscriber.on("edge/t1/data/steady")  # noqa: E731
    try:
        subscriber.wait_for(lambda: len(data()) >= 10, 30, "the first data")
        for i, (text, _) in enumerate(STEPS):
            offset.write_text(text + "\n")
            subscriber.wait_for(lambda i=i: len(steps()) > i, 15, f"clock_step {i + 1}")
            before = len(data())
            subscriber.wait_for(lambda before=before: len(data()) >= before + 10, 15, "data after the step")
        time.sleep(1.0)
    finally:
        assert agent.stop() == 0, agent.log()[-3000:]
    got = [m.env["d"]["step_s"] for m in steps()]
    assert len(got) == len(STEPS), f"one event per step: {got}"
    for step_s, (_, want) in zip(got, STEPS, strict=True):
        assert abs(step_s - want) < 30, (step_s, want)
    msgs = data()
    seqs = [m.env["seq"] for m in msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq continuity across the steps"
    # The pace by arrival (the test's own clock): 10 Hz, so no second holds a storm of messages.
    per_s: dict[int, int] = {}
    for m in msgs:
        per_s[int(m.at)] = per_s.get(int(m.at), 0) + 1
    assert max(per_s.values()) <= 20, f"a burst after a step: {sorted(per_s.items())}"
    stamps = [m.env["ts"] for m in msgs]
    jumps = [b - a for a, b in itertools.pairwise(stamps) if abs(b - a) > 60_000]
    assert len(jumps) == len(STEPS), f"the ts of the data steps with the clock, once per step: {jumps}"
