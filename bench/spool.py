"""Spool benchmark (run by hand): backlog drain rate to a local mosquitto, bytes written per
message, CPU % while spooling at the reference-plant rate. Each figure beside a reference run in
the same process: the in-memory outbox (drain) and a naive durable outbox (one transaction per
message, written before sending, deleted on PUBACK).

    .venv/bin/python -m bench.spool [--messages 50000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent.config.schema import SpoolSection
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.mqtt_session import MqttSession, SessionOptions
from edge_agent.agent.messaging.outbox import MemoryOutbox, Message, Outbox, Priority
from edge_agent.agent.messaging.spool import SpoolOutbox

TOPICS = [f"edge/bench/data/inst{i}" for i in range(10)]
REFERENCE_RATES_PER_S = (30, 50)


def payload(seq: int) -> bytes:
    """A typical feature message (~110 bytes): a few named floats."""
    d = {"velocity_rms_mm_s": 1.234, "accel_peak_g": 0.5, "crest": 3.1, "temp_c": 41.5, "rpm": 1480, "ok": True}
    return codec.encode(d, ts_ms=1_700_000_000_000 + seq, seq=seq)


def make(i: int) -> Message:
    return Message(TOPICS[i % len(TOPICS)], payload(i), 1, False, Priority.DATA, i // len(TOPICS) + 1)


def proc_io() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        k, v = line.split(":")
        out[k] = int(v)
    return out


# --- drain -------------------------------------------------------------------------------------
async def drain(url: str, outbox: Outbox, n: int) -> float:
    """Publish everything in ``outbox`` through a real session; messages per second."""
    session = MqttSession(SessionOptions(url=url, client_id=f"bench-{time.monotonic_ns()}"), outbox)
    async with session:
        await asyncio.wait_for(session.connected.wait(), 10)
        t0 = time.perf_counter()
        while outbox.depth() > 0:
            await asyncio.sleep(0.005)
        rate = n / (time.perf_counter() - t0)
        await session.close()
    return rate


async def fill_spool(path: Path, n: int) -> None:
    box = SpoolOutbox(path, SpoolSection())
    for i in range(n):
        box.put(make(i))
    await box.close()


async def drain_spool(url: str, path: Path, n: int, rate_per_s: int) -> float:
    box = SpoolOutbox(path, SpoolSection(drain_rate_per_s=rate_per_s))
    assert box.depth() == n, box.depth()
    rate = await drain(url, box, n)
    await box.close()
    return rate


async def drain_memory(url: str, n: int) -> float:
    box = MemoryOutbox(n + 1)
    for i in range(n):
        box.put(make(i))
    return await drain(url, box, n)


def bench_drain(n: int, rounds: int = 3) -> None:
    """Best of ``rounds`` alternating runs (the first runs in a process are slower)."""
    broker = LocalBroker().start()
    spool, limited, memory, size_mb = 0.0, 0.0, 0.0, 0.0
    try:
        for _ in range(rounds):
            memory = max(memory, asyncio.run(drain_memory(broker.url, n)))
            with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
                path = Path(d) / "spool"
                asyncio.run(fill_spool(path, n))
                size_mb = sum(p.stat().st_size for p in path.iterdir()) / 2**20
                spool = max(spool, asyncio.run(drain_spool(broker.url, path, n, 10**9)))
                asyncio.run(fill_spool(path, n))
                limited = max(limited, asyncio.run(drain_spool(broker.url, path, n, 10_000)))
    finally:
        broker.close()
    print(f"drain of a {n}-message backlog ({size_mb:.1f} MB spool file) to {broker.kind} on 127.0.0.1,")
    print(f"best of {rounds}:")
    print(f"  spool, unlimited        {spool:9.0f} msg/s")
    print(f"  spool, default limit    {limited:9.0f} msg/s  (drain_rate_per_s = 10000, burst 500)")
    print(f"  in-memory outbox        {memory:9.0f} msg/s  (reference; spool/memory = {spool / memory:.2f})")


# --- bytes written ------------------------------------------------------------------------------
def measure_io(fn: Callable[[], Any]) -> tuple[int, int]:
    """(bytes passed to write(), bytes sent to the block device) while ``fn`` runs."""
    before = proc_io()
    fn()
    after = proc_io()
    return after["wchar"] - before["wchar"], after["write_bytes"] - before["write_bytes"]


def spool_outage_cycle(
    d: Path, n: int, per_tick: int, connected: bool, sync: str = "NORMAL", interval_ms: int = 200
) -> None:
    """Spool ``n`` messages at ``per_tick`` per commit interval (simulated clock, so the background
    sync of NORMAL hardly runs: see the real-time figures), then drain them."""

    async def go() -> None:
        box = SpoolOutbox(d / "spool", SpoolSection(synchronous=sync, commit_interval_ms=interval_ms))
        for i in range(n):
            box.put(make(i))
            if connected:
                box.ack(await box.get())  # the broker acknowledges within the interval
            if i % per_tick == per_tick - 1:
                box.tick()
        while box.depth():
            box.ack(await box.get())
        box.tick()
        box.tick()
        await box.close()

    asyncio.run(go())


def naive_cycle(d: Path, n: int) -> None:
    """Write each message (own transaction, FULL) before sending; delete it on its PUBACK."""
    db = sqlite3.connect(d / "naive.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, topic TEXT, payload BLOB)")
    for i in range(n):
        m = make(i)
        db.execute("INSERT INTO q VALUES (?, ?, ?)", (i, m.topic, m.payload))
        db.execute("DELETE FROM q WHERE id = ?", (i,))
    db.close()


def bench_bytes(n: int) -> None:
    per_tick = 8  # 40 msg/s with a 200 ms commit interval
    size = len(make(0).payload) + len(make(0).topic)
    print(f"\nbytes written per message (payload + topic = {size} B), full cycle spool -> drain, {n} messages:")
    for label, fn in [
        ("connected, acks within an interval", lambda d: spool_outage_cycle(d, n, per_tick, True)),
        ("outage 40 msg/s, 200 ms commits, NORMAL", lambda d: spool_outage_cycle(d, n, per_tick, False)),
        ("outage 40 msg/s, 200 ms commits, FULL", lambda d: spool_outage_cycle(d, n, per_tick, False, "FULL")),
        (
            "outage 40 msg/s, 1 s commits, NORMAL",
            lambda d: spool_outage_cycle(d, n, 5 * per_tick, False, "NORMAL", 1000),
        ),
        ("naive: write before send, delete on ack", lambda d: naive_cycle(d, n)),
    ]:
        with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
            wchar, dev = measure_io(lambda d=d, fn=fn: fn(Path(d)))  # type: ignore[misc]
        print(
            f"  {label:42s} write() {wchar / n:8.0f} B/msg   to device {dev / n:8.0f} B/msg"
            f"   (amplification x{wchar / n / size:.1f})"
        )


# --- CPU while spooling -----------------------------------------------------------------------
async def spool_realtime(outbox: Outbox, rate_per_s: int, seconds: float) -> tuple[float, float]:
    """Put ``rate_per_s`` messages a second for ``seconds`` (broker down); CPU % of this process
    and bytes sent to the device per message (background sync included)."""
    period = 1.0 / rate_per_s
    io0 = proc_io()["write_bytes"]
    start, cpu0 = time.monotonic(), time.process_time()
    i = 0
    while (now := time.monotonic()) - start < seconds:
        outbox.put(make(i))
        i += 1
        await asyncio.sleep(max(0.0, start + i * period - now))
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - start
    await outbox.close()
    return 100.0 * cpu / wall, (proc_io()["write_bytes"] - io0) / i


def bench_cpu(seconds: float) -> None:
    print(f"\nCPU % of one core while spooling in real time (broker down), {seconds:.0f} s each:")
    for rate in REFERENCE_RATES_PER_S:
        for sync in ("NORMAL", "FULL"):
            with tempfile.TemporaryDirectory(dir="/var/tmp") as d:

                async def spool(d: str = d, rate: int = rate, sync: str = sync) -> tuple[float, float]:
                    box = SpoolOutbox(Path(d) / "spool", SpoolSection(synchronous=sync))
                    return await spool_realtime(box, rate, seconds)

                async def memory(rate: int = rate) -> tuple[float, float]:
                    return await spool_realtime(MemoryOutbox(10**6), rate, seconds)

                (s, dev), (m, _) = asyncio.run(spool()), asyncio.run(memory())
            print(
                f"  {rate:3d} msg/s {sync:6s}: spool {s:5.2f} %   in-memory outbox {m:5.2f} %"
                f"   (spool overhead {s - m:+.2f} %)   to device {dev:5.0f} B/msg"
            )


def main() -> None:
    logging.getLogger("agent").setLevel(logging.ERROR)  # no connect/disconnect chatter
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--parts", nargs="+", default=["drain", "bytes", "cpu"], choices=["drain", "bytes", "cpu"])
    args = ap.parse_args()
    if "drain" in args.parts:
        bench_drain(args.messages)
    if "bytes" in args.parts:
        bench_bytes(min(args.messages, 20_000))
    if "cpu" in args.parts:
        bench_cpu(args.seconds)


if __name__ == "__main__":
    main()
