"""Issue 30, 2: an inbound flood on config/set (garbage, then valid pushes) against a real agent on
mosquitto, and what its 0.5-s probe instance saw meanwhile.

Run by hand: .venv/bin/python -m bench.hostile_flood [--seconds 60] [--rate 10000]

Goals: 0 seq gaps on the probe, longest silence <= 2 s, RSS within the unit's MemoryMax (256 MB),
no false device alarms, every shed message counted and reported (inbound_shed events). The CI
test (tests/agent/test_hostile.py) runs the same for 5 s per kind; this prints the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge_agent.agent.devtools.local_broker import LocalBroker  # noqa: E402
from flood import garbage, run_flood, valid_pushes  # noqa: E402

from bench.common import machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="flood duration per kind")
    ap.add_argument("--rate", type=int, default=10_000, help="messages per second")
    args = ap.parse_args()
    print(f"machine: {machine()}; load before: {os.getloadavg()}")
    broker = LocalBroker().start()
    try:
        for label, payloads in (("garbage", garbage), ("valid pushes", valid_pushes)):
            with tempfile.TemporaryDirectory() as tmp:
                result = run_flood(Path(tmp), broker.url, payloads, seconds=args.seconds, rate_per_s=args.rate)
            print("\n".join(result.lines(label)))
            ok = result.seq_gaps == 0 and result.longest_silence_s <= 2.0 and result.rss_max_mb < 256
            print(f"  goals met: {ok and not result.false_alarms}; load now: {os.getloadavg()}")
    finally:
        broker.close()


if __name__ == "__main__":
    main()
