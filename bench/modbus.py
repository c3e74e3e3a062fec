"""Modbus benchmark: the 500-tag reference PLC over loopback, ours vs one request per tag.

Run by hand: ``.venv/bin/python -m bench.modbus [--seconds 10] [--polls 200]``. Starts the
simulated PLC (``python -m edge_agent.drivers.modbus.simulator``) in its own process so that only the client
is measured, then prints, for our coalesced driver (+ the plc plugin's report by exception) and
for a naive pymodbus loop reading one tag per request:
requests per poll, poll time (median / p95, back to back), CPU % of a core at 1 Hz, values
published per second.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import msgspec
from edge_agent.agent.messaging.codec import encode
from edge_agent.drivers.modbus import ModbusDriver, ModbusOptions
from edge_agent.drivers.modbus.codec import decoder, registers_to_bytes
from edge_agent.drivers.modbus.simulator import reference_layout
from edge_agent.plugins.contract import RealClock
from edge_agent.plugins.plc.plugin import SPEC as PLC
from edge_agent.plugins.testing.harness import Harness


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simplc(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.drivers.modbus.simulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "simplc:" not in line:
        proc.kill()
        raise SystemExit(f"simplc did not start: {line!r}")
    return proc


class Naive:
    """One request per tag with pymodbus, decoded with the same codec (the peer gateways' way)."""

    def __init__(self, port: int) -> None:
        from pymodbus.client import AsyncModbusTcpClient

        self.client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
        self.tags = reference_layout()
        self.decoders = {t.name: decoder(t) for t in self.tags if not t.table.is_bits}
        self.requests = 0

    async def read(self) -> dict[str, Any]:
        c = self.client
        out: dict[str, Any] = {}
        for t in self.tags:
            self.requests += 1
            fn = {
                "coil": c.read_coils,
                "discrete_input": c.read_discrete_inputs,
                "holding_register": c.read_holding_registers,
                "input_register": c.read_input_registers,
            }[t.table]
            rr = await fn(t.address, count=t.count, device_id=1)
            if t.table.is_bits:
                out[t.name] = bool(rr.bits[0])
            else:
                out[t.name] = self.decoders[t.name](registers_to_bytes(rr.registers), 0)
        return out


async def poll_times(read: Any, polls: int) -> list[float]:
    times = []
    for _ in range(polls):
        t = time.perf_counter()
        await read()
        times.append((time.perf_counter() - t) * 1000)
    return times


async def cpu_at_1hz(poll: Any, seconds: float) -> float:
    """CPU time of this process per wall time (% of one core) while polling at 1 Hz."""
    loop = asyncio.get_running_loop()
    start_wall, start_cpu = loop.time(), time.process_time()
    k = 0
    while loop.time() - start_wall < seconds:
        k += 1
        await poll()
        await asyncio.sleep(max(0.0, start_wall + k - loop.time()))
    return 100.0 * (time.process_time() - start_cpu) / (loop.time() - start_wall)


def line(name: str, requests: float, times: list[float], cpu: float, published: float | None) -> str:
    q = statistics.quantiles(times, n=20)
    pub = "" if published is None else f"  published {published:6.1f} values/s"
    return (
        f"{name:<28} requests/poll {requests:6.1f}  poll median {statistics.median(times):7.2f} ms"
        f"  p95 {q[18]:7.2f} ms  CPU@1Hz {cpu:5.2f} %{pub}"
    )


async def bench(port: int, seconds: float, polls: int) -> None:
    o = msgspec.convert({"transport": "tcp", "port": port, "layout": "reference", "timeout_s": 1.0}, ModbusOptions)
    d = ModbusDriver(o)
    h = Harness(PLC, options={"heartbeat_s": 300}, driver=d, clock=RealClock())
    await h.start()
    await h.poll()  # warm up; publishes all 500 once
    r0 = d.requests_sent
    ours = await poll_times(d.read, polls)
    ours_req = (d.requests_sent - r0) / polls
    n0, m0 = sum(len(e.values) for e in h.emitted), len(h.emitted)
    ours_cpu = await cpu_at_1hz(h.poll, seconds)
    ours_pub = (sum(len(e.values) for e in h.emitted) - n0) / seconds
    wire = sum(len(encode(e.values, ts_ms=0, seq=i, quality=e.quality)) for i, e in enumerate(h.emitted[m0:]))
    await h.close()

    naive = Naive(port)
    await naive.client.connect()
    await naive.read()
    n_polls = max(5, polls // 20)
    r0 = naive.requests
    base = await poll_times(naive.read, n_polls)
    base_req = (naive.requests - r0) / n_polls
    base_cpu = await cpu_at_1hz(naive.read, seconds)
    naive.client.close()

    print(f"reference PLC: {len(d.tags)} tags, plan of {len(d.plan)} requests, loopback TCP")
    print(line("ours (coalesced + RBE)", ours_req, ours, ours_cpu, ours_pub))
    print(line("naive (one request per tag)", base_req, base, base_cpu, None))
    print(f"ours: {wire / seconds:.0f} payload bytes/s (MessagePack envelopes, float32; MQTT headers not counted)")
    print(
        f"ratios naive/ours: requests x{base_req / ours_req:.0f}, "
        f"poll time x{statistics.median(base) / statistics.median(ours):.0f}, CPU x{base_cpu / max(ours_cpu, 1e-9):.1f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="window of the 1 Hz CPU measurement")
    p.add_argument("--polls", type=int, default=200, help="back-to-back polls for the poll time")
    args = p.parse_args()
    port = free_port()
    proc = start_simplc(port)
    try:
        asyncio.run(bench(port, args.seconds, args.polls))
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    main()
