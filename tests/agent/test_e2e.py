"""End to end: `edge-agent run` as a process, a real mosquitto, a paho subscriber."""

from __future__ import annotations

import time
from pathlib import Path

from edge_agent.agent.devtools.local_broker import LocalBroker
from support import AgentProcess, Subscriber, scaled, write_config

INSTANCES = """
[[instances]]
name = "sine"
plugin = "values"
interval_s = 0.1
driver = { type = "sim", profile = "ramp", channels = 2, amplitude = 100.0, period_s = 5 }
[instances.options]
heartbeat_s = 0

[[instances]]
name = "system"
plugin = "system"
interval_s = 1
"""


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "agent.toml", state_dir=tmp_path / "state", instances=INSTANCES)


def _seqs(sub: Subscriber, topic: str) -> list[int]:
    return [m.env["seq"] for m in sub.on(topic)]


def test_envelope_seq_status_and_last_will(tmp_path: Path, broker: LocalBroker, subscriber: Subscriber) -> None:
    agent = AgentProcess(_config(tmp_path), broker.url)
    try:
        subscriber.wait_for(lambda: len(subscriber.on("edge/t1/data/sine")) >= 10, 15, "10 sine messages")
        status = subscriber.wait_for(lambda: subscriber.on("edge/t1/status"), 5, "status")[-1]
        assert status.env["d"]["state"] == "online"
        assert {"version", "config_hash", "host", "started", "config_version"} <= set(status.env["d"])
        msg = subscriber.on("edge/t1/data/sine")[0]
        assert set(msg.env) >= {"v", "ts", "seq", "d"} and msg.env["v"] == 1
        assert abs(msg.env["ts"] / 1000 - time.time()) < 30
        assert set(msg.env["d"]) == {"ch0", "ch1"}
        seqs = _seqs(subscriber, "edge/t1/data/sine")
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "seq must be continuous"
        assert seqs[0] == 1
        agent.kill()  # SIGKILL: the broker publishes the last will
        subscriber.wait_for(
            lambda: subscriber.on("edge/t1/status")[-1].env["d"]["state"] == "offline", 60, "the offline last will"
        )
    finally:
        agent.kill()
    late = Subscriber(broker.url, ["edge/t1/status"])  # retained: a newcomer sees offline at once
    try:
        m = late.wait_for(lambda: late.on("edge/t1/status"), 5, "retained status")[0]
        assert m.retain and m.env["d"]["state"] == "offline"
    finally:
        late.close()


def test_sigterm_exits_0_fast_and_seq_continues_after_restart(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber
) -> None:
    cfg = _config(tmp_path)
    agent = AgentProcess(cfg, broker.url)
    subscriber.wait_for(lambda: len(subscriber.on("edge/t1/data/sine")) >= 5, 15, "first run data")
    t0 = time.monotonic()
    rc = agent.stop()
    assert rc == 0, agent.log()
    assert time.monotonic() - t0 < scaled(5.0)
    status = subscriber.wait_for(lambda: subscriber.on("edge/t1/status")[-1], 5, "status")
    assert status.env["d"]["state"] == "offline" and status.env["d"]["reason"] == "stopped"
    time.sleep(0.2)
    last = _seqs(subscriber, "edge/t1/data/sine")[-1]
    agent2 = AgentProcess(cfg, broker.url)
    try:
        subscriber.wait_for(lambda: _seqs(subscriber, "edge/t1/data/sine")[-1] > last + 2, 15, "second run")
    finally:
        assert agent2.stop() == 0
    seqs = _seqs(subscriber, "edge/t1/data/sine")
    assert seqs == list(range(1, len(seqs) + 1)), "seq continues at last + 1 after a clean restart"


def test_sighup_reloads_valid_config_and_keeps_old_on_invalid(
    tmp_path: Path, broker: LocalBroker, subscriber: Subscriber
) -> None:
    import signal

    cfg = _config(tmp_path)
    agent = AgentProcess(cfg, broker.url)
    try:
        subscriber.wait_for(lambda: subscriber.on("edge/t1/data/sine"), 15, "first run data")
        cfg.write_text(
            cfg.read_text() + '\n[[instances]]\nname = "extra"\nplugin = "values"\ninterval_s = 0.2\n'
            'driver = { type = "sim", profile = "ramp", amplitude = 100.0 }\n'
        )
        agent.proc.send_signal(signal.SIGHUP)
        subscriber.wait_for(lambda: subscriber.on("edge/t1/data/extra"), 10, "the instance added by SIGHUP")
        cfg.write_text(cfg.read_text().replace("interval_s = 0.2", 'interval_s = "often"'))
        agent.proc.send_signal(signal.SIGHUP)
        n = len(subscriber.on("edge/t1/data/extra"))
        subscriber.wait_for(lambda: len(subscriber.on("edge/t1/data/extra")) > n + 3, 10, "still running the old one")
        assert agent.proc.poll() is None
    finally:
        assert agent.stop() == 0
    assert "reload refused" in agent.log() and 'interval_s: expected a number, got "often"' in agent.log()
