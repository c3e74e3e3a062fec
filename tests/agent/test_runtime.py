"""The runtime's wiring, built by bootstrap and run in this process against a real broker: the
reloads reset the key rings of the handlers the session calls, the publisher feeds what was
registered, and a running runtime grows no attribute."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.config.registry import load_registry
from edge_agent.agent.config.schema import build, load
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.extensions import Extensions, Quality
from edge_agent.agent.messaging.outbox import MemoryOutbox
from edge_agent.agent.messaging.publisher import Publisher, Topics
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.remote.config_push import RemoteConfig
from edge_agent.agent.remote.signing import KeyRing
from edge_agent.agent.runtime.bootstrap import build_runtime
from edge_agent.plugins.contract import Severity
from support import BASE, STEADY, Subscriber, write_config

SPARKPLUG = '[sparkplug]\nenabled = true\ngroup_id = "plant"\n'


class Resets:
    """Which RemoteConfig and which key rings were reset (spies on the classes' reset methods)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pushes: list[RemoteConfig] = []
        self.rings: list[KeyRing] = []
        reset_keys, reset = RemoteConfig.reset_keys, KeyRing.reset

        def spy_reset_keys(remote: RemoteConfig) -> None:
            self.pushes.append(remote)
            reset_keys(remote)

        def spy_reset(ring: KeyRing) -> None:
            self.rings.append(ring)
            reset(ring)

        monkeypatch.setattr(RemoteConfig, "reset_keys", spy_reset_keys)
        monkeypatch.setattr(KeyRing, "reset", spy_reset)

    def clear(self) -> None:
        self.pushes.clear()
        self.rings.clear()


async def _until(done: Any, what: str, timeout_s: float = 20.0) -> None:
    """Poll ``done()`` on the loop (the agent runs on it too); fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("sparkplug", [False, True], ids=["native", "sparkplug"])
def test_a_reload_resets_the_keys_of_the_handlers_the_session_calls(
    tmp_path: Path, broker: LocalBroker, monkeypatch: pytest.MonkeyPatch, sparkplug: bool
) -> None:
    """A real SIGHUP and a real ``cmd/reload`` through the broker reset the key rings of the very
    RemoteConfig and Commands the MQTT session calls (issue 23: with Sparkplug on, SIGHUP reset a
    second RemoteConfig the session never called; ``cmd reload`` reset none)."""
    extra = SPARKPLUG if sparkplug else ""
    path = write_config(tmp_path / "agent.toml", state_dir=tmp_path / "state", instances=BASE, extra=extra)
    resets = Resets(monkeypatch)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    async def main() -> None:
        reg = load_registry()
        rt = build_runtime(load(path, reg), reg, config_path=path, url_override=broker.url)
        subs: dict[str, Any] = rt.session.opts.subscriptions
        pushes, commands = subs["edge/t1/config/set"].__self__, subs["edge/t1/cmd/+"].__self__
        task = asyncio.create_task(rt.run())
        await asyncio.wait_for(rt.session.connected.wait(), 20)
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(lambda: resets.pushes, "the SIGHUP reload")
        assert resets.pushes == [pushes] and commands.authority.keys in resets.rings
        resets.clear()
        sub = Subscriber(broker.url, ["edge/t1/cmd/reload/result"])
        try:
            sub.client.publish("edge/t1/cmd/reload", msgpack.packb({"id": 1}), qos=1)
            await _until(lambda: sub.on("edge/t1/cmd/reload/result"), "the cmd reload answer")
        finally:
            sub.close()
        assert resets.pushes == [pushes] and commands.authority.keys in resets.rings
        rt.stop()
        assert await task == 0

    try:
        asyncio.run(main())
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


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


class BrokenService:
    """A registered service whose close() fails."""

    def __init__(self) -> None:
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        raise OSError("disk gone")


def test_a_service_that_fails_to_close_does_not_spoil_the_clean_stop(tmp_path: Path, broker: LocalBroker) -> None:
    data = {"agent": {"id": "t1", "state_dir": str(tmp_path)}, "mqtt": {"url": broker.url}, "instances": [STEADY]}
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    broken = BrokenService()

    async def main() -> bool:
        rt = build_runtime(build(data, load_registry(), source="t"), load_registry())
        rt.extensions.services.insert(0, broken)  # closed last: after maintenance's store
        task = asyncio.create_task(rt.run())
        await asyncio.wait_for(rt.session.connected.wait(), 20)
        rt.stop()
        assert await task == 0
        return rt.stopped_clean

    try:
        assert asyncio.run(main()) and broken.started, "the spool, the seq store and the offline status still closed"
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
