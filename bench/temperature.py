"""Temperature benchmarks, run by hand: ``.venv/bin/python -m bench.temperature``.

Prints per-call costs of the ITS-90 conversions (against a naive inverse that solves the
reference function with scipy's brentq, in the same process) and the cost of one plugin poll of
the reference plant's eight 1 Hz thermocouples, plus what report by exception sends.
"""

from __future__ import annotations

import asyncio
import sys
import time
import tomllib
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.drivers.max318xx import max31855, max31856  # noqa: E402
from edge_agent.plugins.temperature import SPEC, its90  # noqa: E402
from edge_agent.plugins.testing.harness import Harness, ManualClock  # noqa: E402


def per_call_us(fn, n: int = 20000) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n * 1e6


def bench_conversions() -> None:
    from scipy.optimize import brentq

    emfs = [its90.emf_mv("K", -150.0 + (i % 1500)) for i in range(1500)]
    fwd = per_call_us(lambda i: its90.emf_mv("K", -150.0 + (i % 1500)))
    inv = per_call_us(lambda i: its90.temperature_c("K", emfs[i % 1500]))
    refined = per_call_us(lambda i: its90.temperature_c("K", emfs[i % 1500], refine=True), 5000)

    def naive(i: int) -> float:
        e = emfs[i % 1500]
        return brentq(lambda t: its90.emf_mv("K", t) - e, -200.0, 1372.0, xtol=1e-6)

    slow = per_call_us(naive, 2000)
    print(f"type K E(t):                 {fwd:7.2f} us/call")
    print(f"type K t(E), NIST inverse:   {inv:7.2f} us/call  (naive brentq on E(t): {slow:.1f} us, x{slow / inv:.0f})")
    print(f"type K t(E), refined:        {refined:7.2f} us/call")


def bench_plugin(seconds: int = 3600) -> None:
    cfg = tomllib.loads((ROOT / "examples/snippets/temperature.toml").read_text())
    clock = ManualClock()
    hs = []
    for inst in cfg["instances"]:
        d = dict(inst["driver"])
        mod = {"max31855": max31855, "max31856": max31856}[d.pop("type")]
        drv = mod.SPEC.factory.__call__(msgspec.convert(d, mod.SPEC.options), clock=clock.monotonic)
        hs.append(Harness(SPEC, options=inst["options"], driver=drv, clock=clock, instance=inst["name"]))

    async def run() -> float:
        for h in hs:
            await h.start()
        busy = 0.0
        for _ in range(seconds):
            t0 = time.perf_counter()
            for h in hs:
                await h.plugin.poll()
            busy += time.perf_counter() - t0
            clock.advance(1.0)
        return busy

    busy = asyncio.run(run())
    keys = sum(len(v) for h in hs for e in h.emitted for v in e.values.values())
    msgs = sum(len(h.emitted) for h in hs)
    every = 8 * 2 * seconds
    print(
        f"plugin poll, 2 instances x 4 channels (read in thread pool, like the runtime): "
        f"{busy / seconds / 2 * 1e3:.3f} ms per instance poll"
    )
    for h in hs:
        n_keys = sum(len(v) for e in h.emitted for v in e.values.values())
        print(f"  {h.ctx.instance}: {len(h.emitted)} messages, {n_keys} values in {seconds} s")
    print(
        f"{seconds} s of the reference plant: {msgs} messages of {2 * seconds} polls, "
        f"{keys} values of {every} if every value were sent every second ({keys / every:.1%})"
    )


if __name__ == "__main__":
    bench_conversions()
    bench_plugin()
