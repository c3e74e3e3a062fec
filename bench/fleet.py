"""A fleet of agents on one mosquitto: push to all in waves, one agent offline during the push.

N agents run as asyncio Runtimes in this one process (minimal configs: one simulated instance),
so 50 agents stay light on a 2-core machine. The push goes through the real `push-config` code
(inventory, waves of 10, per-agent bound documents, retained desired state). Prints JSON: the
fleet push time, every agent's result by name, how long the offline agent took to converge after
it reconnected, and the broker messages per agent (config and status topics during the push).

Run by hand: .venv/bin/python -m bench.fleet [--agents 50] [--wave 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from edge_agent.agent.cli import build_parser  # noqa: E402
from edge_agent.agent.config.registry import Registry, load_registry  # noqa: E402
from edge_agent.agent.config.schema import build  # noqa: E402
from edge_agent.agent.devtools.local_broker import LocalBroker  # noqa: E402
from edge_agent.agent.runtime.bootstrap import build_runtime  # noqa: E402
from edge_agent.agent.runtime.runtime import Runtime  # noqa: E402
from support import Subscriber  # noqa: E402

PUSHED = {"name": "pushed", "plugin": "values", "interval_s": 1.0, "driver": {"type": "sim", "profile": "square"}}


def agent_config(i: int, tmp: Path, url: str, reg: Registry) -> Any:
    """A minimal agent: one slow simulated instance, no spool, one I/O thread."""
    raw = {
        "agent": {"id": f"a{i:03d}", "state_dir": str(tmp / f"a{i:03d}"), "io_threads": 1, "groups": ["fleet"]},
        "mqtt": {"url": url, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "spool": {"enabled": False},
        "remote": {"min_interval_s": 0, "verify_timeout_s": 5},
        "instances": [{"name": "base", "plugin": "values", "interval_s": 5.0, "driver": {"type": "sim"}}],
    }
    return build(raw, reg, source=f"a{i:03d}")


class Fleet:
    """The Runtimes, each as a task of this loop."""

    def __init__(self, n: int, tmp: Path, url: str) -> None:
        self.reg = load_registry()
        self.configs = [agent_config(i, tmp, url, self.reg) for i in range(n)]
        self.runtimes: dict[int, Runtime] = {}
        self.tasks: dict[int, asyncio.Task[int]] = {}

    def start(self, i: int) -> None:
        rt = build_runtime(self.configs[i], self.reg)
        self.runtimes[i] = rt
        self.tasks[i] = asyncio.get_running_loop().create_task(rt.run(), name=f"agent-{i}")

    async def stop(self, i: int) -> None:
        self.runtimes[i].stop()
        await self.tasks[i]
        self.runtimes[i].finish()  # cancels the runtime's stop-deadline backstop (it would exit the process)

    async def stop_all(self) -> None:
        for rt in self.runtimes.values():
            rt.stop()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for rt in self.runtimes.values():
            rt.finish()


def push(url: str, wave: int) -> tuple[dict[str, Any], float]:
    """Run `edge-agent push-config --agent 'a*' --wave N --json` in this process."""
    f = Path(tempfile.mkstemp(suffix=".json")[1])
    f.write_text(json.dumps({"instances": [PUSHED]}))
    args = build_parser().parse_args(
        ["push-config", str(f), "--agent", "a*", "--wave", str(wave), "--json", "--url", url, "--timeout", "30"]
    )
    out = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out):
        args.func(args)
    return json.loads(out.getvalue()), time.monotonic() - t0


async def run(n: int, wave: int, url: str, tmp: Path) -> dict[str, Any]:
    fleet = Fleet(n, tmp, url)
    sub = Subscriber(url, ["edge/+/config/#", "edge/+/status"])
    try:
        for i in range(n):
            fleet.start(i)
        ids = [f"a{i:03d}" for i in range(n)]
        await asyncio.to_thread(
            sub.wait_for, lambda: all(sub.on(f"edge/{a}/config/state") for a in ids), 60, "fleet up"
        )
        offline = n - 1
        await fleet.stop(offline)
        before = len(sub.raw)
        result, push_s = await asyncio.to_thread(push, url, wave)
        during = [topic for topic, _ in sub.raw[before:]]  # every message, the desired documents too
        version = result["version"]
        t0 = time.monotonic()
        fleet.start(offline)
        oid = ids[offline]

        def converged() -> bool:
            states = sub.on(f"edge/{oid}/config/state")
            return bool(states) and states[-1].env["d"].get("version") == version

        await asyncio.to_thread(sub.wait_for, converged, 30, "the offline agent converging")
        catch_up_s = time.monotonic() - t0
        statuses: dict[str, int] = {}
        for r in result["results"].values():
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        return {
            "agents": n,
            "wave": wave,
            "version": version,
            "push_s": round(push_s, 2),
            "statuses": statuses,
            "results": {a: r["status"] for a, r in sorted(result["results"].items())},
            "offline_agent": oid,
            "offline_converged_s": round(catch_up_s, 2),
            "broker_messages_per_agent": round(len(during) / (n - 1), 2),
            "messages_by_kind": _kinds(during),
        }
    finally:
        await fleet.stop_all()
        sub.close()


def _kinds(topics: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for topic in topics:
        kind = topic.split("/", 2)[2]
        out[kind] = out.get(kind, 0) + 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--wave", type=int, default=10)
    a = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    broker = LocalBroker().start()
    try:
        with tempfile.TemporaryDirectory(prefix="edge-fleet-") as tmp:
            report = asyncio.run(run(a.agents, a.wave, broker.url, Path(tmp)))
    finally:
        broker.close()
    report["threads_at_end"] = threading.active_count()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
