"""The runtime's wiring, against a real broker and a real agent process: a reload (SIGHUP or
``cmd reload``) resets the trusted-key ring of the very remote-config handler the MQTT session
calls, with Sparkplug on and off (issue 23: with Sparkplug on, the session kept another copy and
SIGHUP reset the unused one; ``cmd reload`` reset none)."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.extensions import Extensions, Quality
from edge_agent.agent.messaging.outbox import MemoryOutbox
from edge_agent.agent.messaging.publisher import Publisher, Topics
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.ops.fleet import signed_request
from edge_agent.agent.remote.signing import sign
from edge_agent.agent.runtime.bootstrap import build_runtime
from edge_agent.plugins.contract import Severity
from support import BASE, STEADY, AgentProcess, Subscriber, write_config

SPARKPLUG = '[sparkplug]\nenabled = true\ngroup_id = "plant"\n'


class KeyedAgent:
    """An agent that trusts the public key in one file, and a subscriber on its topics."""

    def __init__(self, tmp: Path, broker: LocalBroker, extra: str) -> None:
        self.pub = tmp / "ops.pub"
        self.trust(Ed25519PrivateKey.generate())
        remote = f'[remote]\nmin_interval_s = 0\nrequire_signature = true\ntrusted_keys = ["{self.pub}"]\n'
        cfg = write_config(tmp / "agent.toml", state_dir=tmp / "state", instances=BASE, extra=remote + extra)
        self.sub = Subscriber(broker.url, ["edge/t1/#"])
        self.proc = AgentProcess(cfg, broker.url)
        self.sub.wait_for(lambda: len(self.sub.on("edge/t1/data/steady")) >= 2, 20, "the agent publishing")
        self.version = 1

    def trust(self, key: Ed25519PrivateKey) -> None:
        """Replace the trusted key file with one of the same size and mtime (a key restored with
        ``cp -p``): the key ring cannot see the change, only a reload makes it read the file again."""
        before = self.pub.stat() if self.pub.exists() else None
        self.pub.write_text(base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode())
        if before is not None:
            os.utime(self.pub, ns=(before.st_atime_ns, before.st_mtime_ns))
        self.key = key

    def push(self) -> dict[str, Any]:
        """A push signed with the key trusted now; its answer."""
        self.version += 1
        doc = {
            "version": self.version,
            "config": {"instances": [STEADY]},
            "target": "agent:t1",
            "expires": int(time.time() + 60),
            "nonce": base64.urlsafe_b64encode(os.urandom(12)).decode(),
        }
        return self._ask("edge/t1/config/set", msgpack.packb(sign(doc, self.key)), "edge/t1/config/result")

    def cmd_reload(self) -> dict[str, Any]:
        """``cmd reload``, signed with the key trusted now (a change command under require_signature)."""
        req = signed_request({"id": 1}, "reload", "t1", "test", self.key, 60)
        return self._ask("edge/t1/cmd/reload", msgpack.packb(req), "edge/t1/cmd/reload/result")

    def sighup(self) -> None:
        before = self.proc.log().count("reload:")
        self.proc.proc.send_signal(signal.SIGHUP)
        self.sub.wait_for(lambda: self.proc.log().count("reload:") > before, 10, "the reload logged")

    def _ask(self, topic: str, payload: bytes, answer_topic: str) -> dict[str, Any]:
        before = len(self.sub.on(answer_topic))
        self.sub.client.publish(topic, payload, qos=1)
        self.sub.wait_for(lambda: len(self.sub.on(answer_topic)) > before, 20, f"an answer on {answer_topic}")
        return self.sub.on(answer_topic)[before].env["d"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.proc.stop()
        self.sub.close()


@pytest.fixture(params=["native", "sparkplug"])
def keyed(request: pytest.FixtureRequest, tmp_path: Path, broker: LocalBroker) -> Iterator[KeyedAgent]:
    a = KeyedAgent(tmp_path, broker, SPARKPLUG if request.param == "sparkplug" else "")
    try:
        yield a
    finally:
        a.close()


def test_a_reload_resets_the_keys_the_session_checks_pushes_with(keyed: KeyedAgent) -> None:
    assert keyed.push()["status"] == "accepted", "the first key is read and kept"
    keyed.trust(Ed25519PrivateKey.generate())
    assert keyed.push()["status"] == "rejected", "the ring holds the old key until a reload"
    keyed.sighup()
    assert keyed.push()["status"] == "accepted", "SIGHUP reset the keys of the handler the session calls"
    keyed.trust(Ed25519PrivateKey.generate())
    assert keyed.push()["status"] == "rejected"
    assert keyed.cmd_reload()["ok"] is True, "the command's own ring reads the key file at its first use"
    assert keyed.push()["status"] == "accepted", "cmd reload resets the push keys too"
    keyed.trust(Ed25519PrivateKey.generate())
    keyed.sighup()
    assert keyed.cmd_reload()["ok"] is True, "SIGHUP reset the keys that sign commands as well"


class Recorded:
    """An output and a publish hook that keep what they were given (the second one marks quality)."""

    def __init__(self, mark: str = "", fail: bool = False) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.mark, self.fail = mark, fail

    def data(self, instance: str, values: Mapping[str, Any], quality: Quality, ts_ms: int | None) -> None:
        if self.fail:
            raise RuntimeError("a broken output")
        self.seen.append(("data", dict(quality or {})))

    def event(self, instance: str, kind: str, message: str, severity: str, fields: Mapping[str, Any]) -> None:
        self.seen.append(("event", kind))

    def on_data(self, instance: str, values: Mapping[str, Any], quality: Quality) -> Quality:
        return {**(quality or {}), self.mark: "uncertain"} if self.mark else quality

    def on_event(self, instance: str, kind: str, severity: str, fields: Mapping[str, Any]) -> None:
        self.seen.append(("hooked", kind))


def test_the_publisher_feeds_what_bootstrap_registered(tmp_path: Path) -> None:
    """Hooks run in order (each sees the quality the one before returned), outputs get the result,
    and an output that raises stops neither the others nor the native message."""
    ext = Extensions()
    first, second, broken, out = Recorded(mark="a"), Recorded(mark="b"), Recorded(fail=True), Recorded()
    ext.hooks += [first, second]
    ext.outputs += [broken, out]
    outbox = MemoryOutbox(100)
    pub = Publisher(Topics("edge", "t"), SeqStore(tmp_path / "seq.sqlite"), outbox, extensions=ext)
    pub.data("i1", {"a": 1.0, "b": 2.0}, None, None, 1)
    pub.event("i1", "alarm", "high", Severity.ALARM, {})
    assert out.seen == [("data", {"a": "uncertain", "b": "uncertain"}), ("event", "alarm")]
    assert first.seen == second.seen == [("hooked", "alarm")]
    assert outbox.depth() == 2, "the native data and event went out in spite of the broken output"


def test_a_built_runtime_grows_no_attribute_while_it_runs(tmp_path: Path, broker: LocalBroker) -> None:
    """Every part is built and handed in before run(); the session calls the runtime's own remote."""
    data = {
        "agent": {"id": "t1", "state_dir": str(tmp_path), "stop_timeout_s": 5.0},
        "mqtt": {"url": broker.url},
        "instances": [STEADY],
    }
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    async def main() -> tuple[set[str], set[str]]:
        rt = build_runtime(build(data, load_registry(), source="t"), load_registry())
        assert rt.remote is not None
        handler: Any = rt.session.opts.subscriptions["edge/t1/config/set"]
        assert handler.__self__ is rt.remote.pushes, "the session calls the runtime's own RemoteConfig"
        before = set(vars(rt))
        task = asyncio.create_task(rt.run())
        await asyncio.wait_for(rt.session.connected.wait(), 20)
        rt.stop()
        assert await task == 0
        return before, set(vars(rt))

    try:
        before, after = asyncio.run(main())
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert after == before
