"""Restarts that converge (issue 30, 6): N ``cmd/restart`` of one instance at a given rate against a
real Runtime on mosquitto; prints how many were answered, run, coalesced and shed, how long the
burst took to settle, and how many copies of the instance run afterwards (must be 1).

Run by hand: .venv/bin/python -m bench.restarts [--restarts 400] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import msgpack  # noqa: E402
from edge_agent.agent.config.registry import load_registry  # noqa: E402
from edge_agent.agent.config.schema import build  # noqa: E402
from edge_agent.agent.devtools.local_broker import LocalBroker  # noqa: E402
from edge_agent.agent.runtime.bootstrap import build_runtime  # noqa: E402
from support import Subscriber  # noqa: E402


def config(tmp: Path, url: str) -> Any:
    raw = {
        "agent": {"id": "b1", "state_dir": str(tmp / "state")},
        "mqtt": {"url": url},
        "spool": {"enabled": False},
        "instances": [{"name": "plc1", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim"}}],
    }
    return build(raw, load_registry(), source="bench")


async def run(n: int, seconds: float, url: str, tmp: Path) -> dict[str, Any]:
    rt = build_runtime(config(tmp, url), load_registry())
    task = asyncio.get_running_loop().create_task(rt.run())
    sub = Subscriber(url, ["edge/b1/#"])
    try:
        await asyncio.to_thread(sub.wait_for, lambda: sub.on("edge/b1/data/plc1"), 20, "plc1 publishing")
        t0 = time.monotonic()
        for i in range(n):
            sub.client.publish("edge/b1/cmd/restart", msgpack.packb({"id": i, "instance": "plc1"}), qos=1)
            await asyncio.sleep(max(0.0, t0 + (i + 1) * seconds / n - time.monotonic()))

        def settled() -> bool:
            return len(sub.on("edge/b1/cmd/restart/result")) + rt.session.stats.shed.get("edge/b1/cmd/+", 0) >= n

        await asyncio.to_thread(sub.wait_for, settled, 120, "every restart answered or shed")
        answers = [m.env["d"] for m in sub.on("edge/b1/cmd/restart/result")]
        copies = [t for t in asyncio.all_tasks() if t.get_name() == "instance:plc1" and not t.done()]
        ran = rt.control.restarts_started.get("plc1", 0)
        return {
            "requests": n,
            "sent_over_s": seconds,
            "settled_after_s": round(time.monotonic() - t0, 2),
            "answered_ok": sum(bool(a.get("ok")) for a in answers),
            "answered_error": sum(not a.get("ok") for a in answers),
            "restarts_run": ran,
            "coalesced": sum(bool(a.get("ok")) for a in answers) - ran,
            "shed": rt.session.stats.shed.get("edge/b1/cmd/+", 0),
            "copies_of_plc1_after": len(copies),
        }
    finally:
        sub.close()
        rt.stop()
        await task
        rt.finish()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--restarts", type=int, default=400)
    p.add_argument("--seconds", type=float, default=20.0, help="spread the requests over this long (0: a burst)")
    a = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    broker = LocalBroker().start()
    try:
        with tempfile.TemporaryDirectory(prefix="edge-restarts-") as tmp:
            print(json.dumps(asyncio.run(run(a.restarts, a.seconds, broker.url, Path(tmp))), indent=1))
    finally:
        broker.close()


if __name__ == "__main__":
    main()
