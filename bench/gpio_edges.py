"""What one GPIO edge costs the agent: the reference plant's tachometer and part counter on
gpiozero's mock pins, driven back to back (no sleeping), CPU per edge.

Run by hand: ``.venv/bin/python -m bench.gpio_edges [--edges 20000]``. In the reference plant the
simulated pulses make 49.5 + 1 edges a second on a thread of the agent (``gpio-sim-pulses``);
``edges/s x cost per edge`` is the agent's own edge handling (what lgpio's callbacks cost on a
Pi too), the rest of that thread's CPU (bench.plant, per thread) is the simulator waking up.
"""

from __future__ import annotations

import argparse
import time

import msgspec
from edge_agent.drivers.gpio.driver import GpioDriver, GpioOptions

INPUTS = [
    {"name": "shaft_rpm", "pin": 5, "kind": "tachometer", "pull": "down", "pulses_per_rev": 1, "timeout_s": 2.0},
    {"name": "part_count", "pin": 6, "kind": "counter", "pull": "up", "debounce_s": 0.01},
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--edges", type=int, default=20000)
    args = p.parse_args()
    drv = GpioDriver(msgspec.convert({"backend": "mock", "inputs": INPUTS}, GpioOptions))
    drv.open()
    try:
        pin = drv.in_pins["shaft_rpm"]
        t0 = time.process_time()
        for i in range(args.edges):
            if i % 2:
                pin.drive_low()
            else:
                pin.drive_high()
            if i % 64 == 63:
                pin.clear_states()  # as the simulator does
        per_edge_us = 1e6 * (time.process_time() - t0) / args.edges
        print("driver read after the edges:", drv.read())
    finally:
        drv.close()
    print(f"{per_edge_us:.1f} us CPU per edge (mock pin + the driver's callback)")
    print(f"reference plant, 50.5 edges/s: {50.5 * per_edge_us / 1e4:.3f} % of one core")


if __name__ == "__main__":
    main()
