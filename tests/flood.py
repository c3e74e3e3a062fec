"""An inbound flood against a running agent, and what its 0.5-s probe instance saw meanwhile.

Shared by tests/agent/test_hostile.py (short) and bench/hostile_flood.py (60 s, prints figures).
The flooder writes MQTT PUBLISH packets (QoS 0) straight to a socket in batches every 10 ms: a
paho client in Python tops out below the 10,000 msg/s of the security review's flood.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plc_known import known_plc_server, toml_tags
from support import AgentProcess, Subscriber, write_config

PROBE = """
[[instances]]
name = "probe"
plugin = "values"
interval_s = 0.5
driver = { type = "sim", profile = "ramp", amplitude = 1000.0, period_s = 1000 }
options = { heartbeat_s = 0 }
"""
PLC = """
[[instances]]
name = "plc1"
plugin = "plc"
interval_s = 1.0
[instances.driver]
type = "modbus"
port = {port}
tags = [
{tags}
]
"""
FALSE_ALARMS = (
    "device_fault", "tag_fault", "sensor_fault", "instance_error",
    "driver_hung", "instance_hung", "spool_full", "unclean_restart",
)  # fmt: skip


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id: str) -> bytes:
    """MQTT 3.1.1 CONNECT, clean session, keepalive off (the flood may outlast any keepalive)."""
    body = _utf8(b"MQTT") + b"\x04\x02\x00\x00" + _utf8(client_id.encode())
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes) -> bytes:
    """MQTT PUBLISH at QoS 0."""
    body = _utf8(topic.encode()) + payload
    return b"\x30" + _varint(len(body)) + body


class Flooder:
    """A thread publishing ``payloads`` (cycled) to ``topic`` at ``rate_per_s`` until ``stop()``."""

    def __init__(self, url: str, topic: str, payloads: Iterator[bytes], rate_per_s: int) -> None:
        host, port = url.split("//")[1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(connect_packet(f"flood-{id(self)}"))
        if self.sock.recv(4)[:1] != b"\x20":
            raise RuntimeError("broker refused the flooder")
        self.topic, self.payloads, self.rate_per_s = topic, payloads, rate_per_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flooder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        per_tick = max(1, self.rate_per_s // 100)
        start = time.monotonic()
        for tick in itertools.count(1):
            if self._stop.is_set():
                return
            batch = b"".join(publish_packet(self.topic, next(self.payloads)) for _ in range(per_tick))
            try:
                self.sock.sendall(batch)
            except OSError:
                return
            self.sent += per_tick
            delay = start + tick * 0.01 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def garbage() -> Iterator[bytes]:
    """The review's flood: a single garbage byte."""
    return itertools.repeat(b"\xc1")


def valid_pushes(start_version: int = 1) -> Iterator[bytes]:
    """Well-formed pushes with rising versions (each one would be applied if let through)."""
    for v in itertools.count(start_version):
        yield json.dumps({"version": v, "id": f"f{v}", "config": {"instances": []}}).encode()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class FloodResult:
    """What the probe and the events showed during one flood."""

    seconds: float
    sent: int
    probe_messages: int = 0
    seq_gaps: int = 0
    longest_silence_s: float = 0.0
    rss_before_mb: float = 0.0
    rss_max_mb: float = 0.0
    false_alarms: list[str] = field(default_factory=list)
    shed_reported: int = 0
    cpu_pct: float = 0.0  # the agent process during the flood, of one core
    plc_messages: int = 0  # data of the Modbus instance (it publishes by exception)
    results: int = 0  # answers on config/result during the flood

    def lines(self, label: str) -> list[str]:
        return [
            f"{label}: {self.sent} messages in {self.seconds:.1f} s ({self.sent / self.seconds:.0f}/s)",
            f"  probe: {self.probe_messages} messages, {self.seq_gaps} seq gap(s), "
            f"longest silence {self.longest_silence_s:.2f} s",
            f"  RSS: {self.rss_before_mb:.1f} MB before, {self.rss_max_mb:.1f} MB max (MemoryMax 256M); "
            f"agent CPU {self.cpu_pct:.0f} % of a core",
            f"  answers on config/result: {self.results}; shed and reported in events: {self.shed_reported}",
            f"  false alarms (probe and a Modbus PLC polled at 1 Hz): {self.false_alarms or 'none'}",
        ]


def run_flood(
    tmp: Path, url: str, payloads: Callable[[], Iterator[bytes]], *, seconds: float, rate_per_s: int = 10_000
) -> FloodResult:
    """Start an agent with the 0.5-s probe and a PLC polled over Modbus TCP, flood its config/set,
    measure, stop everything."""
    with known_plc_server() as (port, tags, _):
        instances = PROBE + PLC.format(port=port, tags=toml_tags(tags))
        cfg = write_config(tmp / "flood.toml", state_dir=tmp / "state", instances=instances, extra="[remote]\n")
        return _run(cfg, url, payloads, seconds, rate_per_s)


def _run(cfg: Path, url: str, payloads: Callable[[], Iterator[bytes]], seconds: float, rate_per_s: int) -> FloodResult:
    sub = Subscriber(url, ["edge/t1/data/#", "edge/t1/event/#", "edge/t1/config/result"])
    agent = AgentProcess(cfg, url)
    flooder: Flooder | None = None
    try:
        sub.wait_for(lambda: len(sub.on("edge/t1/data/probe")) >= 3, 20, "the probe running")
        result = FloodResult(seconds=seconds, sent=0, rss_before_mb=rss_mb(agent.proc.pid))
        before = len(sub.on("edge/t1/data/probe"))
        results_before = len(sub.on("edge/t1/config/result"))
        cpu_before = cpu_s(agent.proc.pid)
        flooder = Flooder(url, "edge/t1/config/set", payloads(), rate_per_s)
        start = time.monotonic()
        result.rss_max_mb = result.rss_before_mb
        while (now := time.monotonic()) < start + seconds:
            result.rss_max_mb = max(result.rss_max_mb, rss_mb(agent.proc.pid))
            time.sleep(0.2)
        flooder.stop()
        result.sent, result.seconds = flooder.sent, now - start
        result.cpu_pct = 100 * (cpu_s(agent.proc.pid) - cpu_before) / result.seconds
        time.sleep(1.5)  # the probe's next messages show whether it is still alive
        _measure(sub, result, before, start, now + 1.5)
        result.results = len(sub.on("edge/t1/config/result")) - results_before
        result.plc_messages = len(sub.on("edge/t1/data/plc1"))
        return result
    finally:
        if flooder is not None:
            flooder.stop()
        agent.stop()
        sub.close()


def _measure(sub: Subscriber, result: FloodResult, before: int, start: float, end: float) -> None:
    probe = sub.on("edge/t1/data/probe")[before - 1 :]
    result.probe_messages = len(probe) - 1
    seqs = [m.env["seq"] for m in probe]
    result.seq_gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs) if b > a + 1)
    times = [start, *(m.at for m in probe if m.at > start), end]
    result.longest_silence_s = max(b - a for a, b in itertools.pairwise(times))
    events: list[dict[str, Any]] = [m.env["d"] for m in sub.messages if "/event/" in m.topic]
    result.false_alarms = [f"{e.get('kind')}: {e.get('msg')}" for e in events if e.get("kind") in FALSE_ALARMS]
    result.shed_reported = sum(sum(e.get("dropped", {}).values()) for e in events if e.get("kind") == "inbound_shed")
