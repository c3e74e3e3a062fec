"""Issue 30 item 6: restarts and reloads that converge. A burst of restarts of one instance (with
reloads and pushes among them) leaves exactly one copy of it, against a real Runtime and broker."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.runtime.bootstrap import build_runtime
from support import Subscriber, scaled

RESTARTS = 400


def _config(tmp: Path, url: str) -> Any:
    raw = {
        "agent": {"id": "t1", "state_dir": str(tmp / "state")},
        "mqtt": {"url": url, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "spool": {"enabled": False},
        "remote": {"min_interval_s": 0, "verify_timeout_s": scaled(3)},
        "instances": [
            {"name": "other", "plugin": "values", "interval_s": 0.2, "driver": {"type": "sim", "profile": "square"}},
            {"name": "steady", "plugin": "values", "interval_s": 0.5, "driver": {"type": "sim"}},
        ],
    }
    return build(raw, load_registry(), source="test")


def _instance_tasks(name: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"instance:{name}" and not t.done()]


async def _scenario(tmp: Path, url: str) -> None:
    rt = build_runtime(_config(tmp, url), load_registry())
    task = asyncio.get_running_loop().create_task(rt.run())
    sub = Subscriber(url, ["edge/t1/#"])
    try:
        await asyncio.to_thread(sub.wait_for, lambda: sub.on("edge/t1/data/other"), 20, "other publishing")
        for i in range(RESTARTS):  # as fast as the client can publish: harsher than 400 in 20 s
            sub.client.publish("edge/t1/cmd/restart", msgpack.packb({"id": i, "instance": "other"}), qos=1)
            if i % 100 == 50:  # a reload and a push among them take the same one-at-a-time path
                sub.client.publish("edge/t1/cmd/reload", msgpack.packb({"id": f"r{i}"}), qos=1)
            if i == 200:
                doc = {
                    "version": 1,
                    "config": {
                        "instances": [
                            {"name": "other", "plugin": "values", "interval_s": 0.3, "driver": {"type": "sim"}}
                        ]
                    },
                }
                sub.client.publish("edge/t1/config/set", msgpack.packb(doc), qos=1)

        def accounted() -> bool:  # answered, or shed by the inbound flood limit (counted, never run)
            shed = rt.session.stats.shed.get("edge/t1/cmd/+", 0)
            return len(sub.on("edge/t1/cmd/restart/result")) + shed >= RESTARTS

        await asyncio.to_thread(sub.wait_for, accounted, 60, f"{RESTARTS} restarts answered or shed")
        answers = [m.env["d"] for m in sub.on("edge/t1/cmd/restart/result")]
        assert len(answers) >= 16 and all(a["ok"] for a in answers), [a for a in answers if not a["ok"]][:3]
        await asyncio.to_thread(sub.wait_for, lambda: sub.on("edge/t1/config/result"), 20, "the push answer")
        assert sub.on("edge/t1/config/result")[-1].env["d"]["status"] == "accepted"
        assert len(_instance_tasks("other")) == 1, "exactly one copy of the instance runs"
        assert len(_instance_tasks("steady")) == 1
        assert set(rt.instances.runners) == {"other", "steady"}

        # and a later restart still converges to one (asked again while the flood limit still sheds)
        def last_answered() -> bool:
            return any(str(m.env["d"]["id"]).startswith("last") for m in sub.on("edge/t1/cmd/restart/result"))

        for attempt in range(30):
            sub.client.publish(
                "edge/t1/cmd/restart", msgpack.packb({"id": f"last{attempt}", "instance": "other"}), qos=1
            )
            with contextlib.suppress(AssertionError):
                await asyncio.to_thread(sub.wait_for, last_answered, 1.0, "the last restart")
            if last_answered():
                break
        assert last_answered(), "a later restart is answered once the flood limit lets it through"
        assert len(_instance_tasks("other")) == 1
    finally:
        sub.close()
        rt.stop()
        await task
        rt.finish()


def test_a_burst_of_restarts_leaves_exactly_one_instance(tmp_path: Path, broker: LocalBroker) -> None:
    asyncio.run(_scenario(tmp_path, broker.url))
