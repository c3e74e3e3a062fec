"""The chaos suite: hostile drivers beside a healthy 0.5 s instance, against mosquitto.

Measured and asserted with slack (the machine is shared): the healthy instance's largest gap and
its seq with no gap, the agent's thread count (flat across 100 restarts of a hanging instance),
the stop time with reads, close() and a CPU-bound driver stuck, and the watchdog still fed while
instances are stuck. The figures against the goals: bench/chaos.py.
"""

from __future__ import annotations

import itertools
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from chaos_drivers import HOSTILE, install, instances_toml
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import OTHER, STEADY, AgentProcess, RemoteAgent, Subscriber, time_factor, write_config

HEALTHY_INTERVAL_S = 0.5
SLACK_S = 1.0  # on a loaded 2-core machine; the goal (interval + 100 ms) is measured by bench/chaos.py


def slack_s() -> float:
    """SLACK_S scaled to this machine now: an emulated Pi at nice 19 saw a 1.59-s gap at 0.5 s."""
    return SLACK_S * time_factor()


class Watchdog:
    """A fake systemd notify socket that counts WATCHDOG=1 pings."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.pings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pings += self.sock.recv(4096) == b"WATCHDOG=1"
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def events(sub: Subscriber, instance: str, kind: str | None = None) -> list[dict[str, Any]]:
    got = [m.env["d"] for m in sub.on(f"edge/t1/event/{instance}")]
    return [e for e in got if kind is None or e["kind"] == kind]


def command(sub: Subscriber, name: str, req: dict[str, Any]) -> dict[str, Any]:
    topic = f"edge/t1/cmd/{name}/result"
    before = len(sub.on(topic))
    sub.client.publish(f"edge/t1/cmd/{name}", msgpack.packb(req), qos=1)
    sub.wait_for(lambda: len(sub.on(topic)) > before, 10, f"answer to {name}")
    return sub.on(topic)[before].env["d"]  # type: ignore[no-any-return]


def latest_state(sub: Subscriber) -> dict[str, Any]:
    return sub.on("edge/t1/config/state")[-1].env["d"]["instances"]  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_hostile_drivers_cost_only_themselves(tmp_path: Path) -> None:
    hostile = {**HOSTILE, "hangclose": ("hang_close", "none"), "busyproc": ("busy", "process")}
    env = install(tmp_path)
    fake = Watchdog(tmp_path / "notify.sock")
    env |= {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    with LocalBroker() as broker:
        sub = Subscriber(broker.url)
        cfg = write_config(
            tmp_path / "agent.toml",
            state_dir=tmp_path / "state",
            instances=instances_toml(hostile, interval_s=HEALTHY_INTERVAL_S),
            extra="",
        )
        agent = AgentProcess(cfg, broker.url, extra_env=env)
        try:
            sub.wait_for(lambda: events(sub, "hang", "driver_hung"), 30, "the hang to be detected")
            sub.wait_for(lambda: events(sub, "slow", "driver_recovered"), 30, "the slow read to return")
            sub.wait_for(lambda: events(sub, "crash", "instance_error"), 30, "the segfault to be reported")
            sub.wait_for(lambda: events(sub, "busyproc", "driver_hung"), 30, "the busy child to be killed")
            pings_while_stuck = fake.pings
            threads = command(sub, "status", {})["result"]["stats"]["threads"]
            threads_before = threads_of(agent.proc.pid)
            for _ in range(100):
                assert command(sub, "restart", {"instance": "hang"})["ok"]
            time.sleep(1.0)
            threads_after = threads_of(agent.proc.pid)
            pings_while_stuck = fake.pings - pings_while_stuck
            state = latest_state(sub)
            t0 = time.monotonic()
            rc = agent.stop(timeout=30)
            stop_s = time.monotonic() - t0
        finally:
            agent.kill()
            fake.close()
        time.sleep(0.3)
        sub.close()
    log = agent.log()
    assert rc == 0, log
    assert stop_s < 5.0 + slack_s(), f"stop took {stop_s:.2f} s"
    assert "exiting with" in log and "still stuck" in log, "stuck reads were left behind, not waited for"
    assert "closing driver failed: RuntimeError: boom in close" in log, "a raising close() is logged, nothing more"
    assert threads_after <= threads_before + 1, f"100 restarts: threads {threads_before} -> {threads_after}"
    assert threads_after <= 30, threads_after
    assert {"hang", "busy"} <= set(threads["stuck"]) and threads["lane_threads"] <= threads["max_lane_threads"]
    assert threads["stuck"]["hang"]["call"] == "read()" and threads["stuck"]["hang"]["at"].startswith("chaos_drivers:")
    assert pings_while_stuck >= 2, "the watchdog is fed while instances are stuck (the loop is alive)"
    healthy = [m.env for m in sub.on("edge/t1/data/healthy")]
    seqs = [e["seq"] for e in healthy]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "healthy: seq with no gap"
    gap_ms = max(b["ts"] - a["ts"] for a, b in itertools.pairwise(healthy))
    assert gap_ms <= (HEALTHY_INTERVAL_S + slack_s()) * 1000, f"healthy: largest gap {gap_ms} ms"
    assert all(e["d"]["value"] is not None for e in healthy if "value" in e["d"])

    # hang: one driver_hung per episode, even across 100 restarts; nulls with quality timeout
    hung = events(sub, "hang", "driver_hung")
    assert len(hung) == 1 and hung[0]["call"] == "read()" and hung[0]["driver"] == "hostile"
    assert hung[0]["at"].startswith("chaos_drivers:"), hung[0]
    assert hung[0]["cpu"] < 0.1 and "computing" not in hung[0]["msg"]
    busy = events(sub, "busy", "driver_hung")[0]
    assert busy["cpu"] > 0.1 and 'consider isolate = "process"' in busy["msg"], busy
    held = [m.env for m in sub.on("edge/t1/data/hang") if m.env["d"].get("v", 0) is None]
    assert held and all(e["q"] == {"v": "timeout"} for e in held)
    assert state["hang"]["state"] == "hung" and "read()" in state["hang"]["why"]
    # open() failing is a sensor fault: once per episode, with a count; values null with a quality
    fault = events(sub, "noopen", "sensor_fault")
    assert len(fault) == 1 and fault[0]["count"] == 1 and fault[0]["at"].startswith("chaos_drivers:")
    assert "open() of driver 'hostile' failed" in fault[0]["msg"]
    assert state["noopen"]["state"] == "backoff"
    assert any(m.env.get("q") == {"v": "device_error"} for m in sub.on("edge/t1/data/noopen"))
    # a raising read names the call and the module with its package
    err = events(sub, "badread", "instance_error")[0]
    assert "read() of driver 'hostile' raised RuntimeError: boom in read" in err["msg"]
    assert err["at"].startswith("chaos_drivers:")
    # the segfault cost only its own (isolated) instance
    died = events(sub, "crash", "instance_error")[0]
    assert "killed by SIGSEGV" in died["msg"] and "read() of driver 'hostile'" in died["msg"]
    killed = events(sub, "busyproc", "driver_hung")
    assert killed and "was killed" in killed[0]["msg"], "a busy loop in a child process: killed past the deadline"
    assert killed[0]["for_s"] > 0 and killed[0]["at"].startswith("chaos_drivers:"), "the frame in the child"
    for name in ("hang", "busy", "busyproc"):  # one episode, one alarm: a hang is driver_hung only
        assert not events(sub, name, "sensor_fault"), name
    assert events(sub, "junk", "instance_error"), "junk is an instance error, not a crash of the agent"
    offline = [m.env["d"] for m in sub.on("edge/t1/status") if m.env["d"]["state"] == "offline"]
    assert offline and offline[-1]["reason"] == "stopped", "retained offline status published on stop"


def test_second_signal_exits_at_once_and_the_deadline_is_a_backstop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from edge_agent.agent.config.registry import load_registry
    from edge_agent.agent.config.schema import build
    from edge_agent.agent.runtime import runtime as rt_mod
    from edge_agent.agent.runtime.bootstrap import build_runtime

    exits: list[int] = []
    monkeypatch.setattr(rt_mod, "hard_exit", exits.append)
    data = {"agent": {"id": "t", "state_dir": str(tmp_path), "stop_timeout_s": 1.0}, "instances": []}

    async def main() -> None:
        rt = build_runtime(build(data, load_registry(), source="t"), load_registry())
        loop = asyncio.get_running_loop()
        rt._on_stop_signal(loop, signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert rt.stop_event.is_set() and exits == []
        rt._on_stop_signal(loop, signal.SIGINT)
        assert exits == [128 + signal.SIGINT], "a second signal leaves at once"
        await asyncio.sleep(1.3)
        assert exits[-1] == 1, "past the stop deadline the backstop exits"

    asyncio.run(main())


@pytest.mark.slow
def test_pushes_of_hanging_instances_leave_the_others_alone(tmp_path: Path) -> None:
    """Issue 14's report: five pushes that each add an instance whose read hangs, rolled back;
    the untouched instances kept their cadence (they had 27.5 s gaps with the shared pool)."""
    with LocalBroker() as broker:
        agent = RemoteAgent(tmp_path, broker, env=install(tmp_path))
        try:
            for i in range(5):
                bad = {
                    "name": f"bad{i}",
                    "plugin": "values",
                    "interval_s": 0.5,
                    "driver": {"type": "hostile", "mode": "hang"},
                }
                answer = agent.push({"version": 2 + i, "config": {"instances": [STEADY, OTHER, bad]}}, timeout=30)
                assert answer["status"] == "rolled_back", answer
            threads = command(agent.sub, "status", {})["result"]["stats"]["threads"]
        finally:
            agent.close()
    assert threads["lane_threads"] <= 2 + 5 and len(threads["stuck"]) <= 5, threads
    msgs = [m.env for m in agent.sub.on("edge/t1/data/steady")]  # 0.1 s, published every poll
    gap_ms = max(b["ts"] - a["ts"] for a, b in itertools.pairwise(msgs))
    assert len(msgs) > 100 and gap_ms <= (0.1 + slack_s()) * 1000, f"steady: largest gap {gap_ms} ms"
    assert [e["seq"] for e in msgs] == list(range(msgs[0]["seq"], msgs[0]["seq"] + len(msgs)))
