"""sd_notify over a fake NOTIFY_SOCKET: a real AF_UNIX datagram socket in a temp dir."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_agent.agent.runtime.sd_notify import Notifier, socket_address, watchdog_task
from support import scaled


class FakeSystemd:
    """Receives notifications in a thread and timestamps each on arrival."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def messages(self) -> list[str]:
        return [m for _, m in self.received]

    def ping_times(self) -> list[float]:
        return [t for t, m in self.received if m == "WATCHDOG=1"]

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.messages()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class RecordingNotifier(Notifier):
    """Records when each watchdog ping was sent, on the sending (event loop) thread."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.pings_sent_at: list[float] = []

    def watchdog(self) -> bool:
        self.pings_sent_at.append(time.monotonic())
        return super().watchdog()


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[FakeSystemd, RecordingNotifier]]:
    path = str(tmp_path / "notify.sock")
    fake = FakeSystemd(path)
    try:
        yield fake, RecordingNotifier({"NOTIFY_SOCKET": path})
    finally:
        fake.close()


def test_socket_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abc") == "\0abc"
    assert socket_address("") is None
    assert socket_address("@") is None
    assert socket_address("vsock:2:1234") is None


def test_noop_without_notify_socket() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready()
    assert not n.status("x")
    assert not n.watchdog()
    assert n.watchdog_interval_s() is None


def test_lifecycle_messages(systemd: tuple[FakeSystemd, RecordingNotifier]) -> None:
    fake, n = systemd
    assert n.enabled
    assert n.status("loading config")
    assert n.ready("running: 3 instances")
    assert n.watchdog()
    assert n.reloading()
    assert n.ready()
    assert n.extend_timeout(2.5)
    assert n.status("two\nlines")
    assert n.stopping()
    msgs = fake.wait_for(8)
    assert msgs[:3] == ["STATUS=loading config", "READY=1\nSTATUS=running: 3 instances", "WATCHDOG=1"]
    reload_lines = msgs[3].split("\n")
    assert reload_lines[0] == "RELOADING=1"
    key, usec = reload_lines[1].split("=")
    assert key == "MONOTONIC_USEC"
    assert abs(int(usec) / 1e6 - time.monotonic()) < 60  # same clock as CLOCK_MONOTONIC
    assert msgs[4:] == ["READY=1", "EXTEND_TIMEOUT_USEC=2500000", "STATUS=two lines", "STOPPING=1"]
    n.close()


def test_abstract_namespace() -> None:
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    fake = FakeSystemd("\0" + name)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert fake.wait_for(1) == ["READY=1"]
        n.close()
    finally:
        fake.close()


def test_socket_errors_never_raise_and_log_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    with caplog.at_level(logging.DEBUG, logger="edge_agent.agent.runtime.sd_notify"):
        assert not n.ready()
        assert not n.watchdog()
        assert not n.stopping()
    assert len([r for r in caplog.records if r.name == "edge_agent.agent.runtime.sd_notify"]) == 1


def test_watchdog_interval_from_environment() -> None:
    me = str(os.getpid())
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval_s() == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": me}).watchdog_interval_s() == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval_s() is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval_s() is None
    assert Notifier({"WATCHDOG_USEC": "soon"}).watchdog_interval_s() is None


async def _wait_pings(fake: FakeSystemd, count: int) -> None:
    target = len(fake.ping_times()) + count
    async with asyncio.timeout(10):
        while len(fake.ping_times()) < target:
            await asyncio.sleep(0.005)


def test_watchdog_pings_regularly_and_stop_while_loop_is_blocked(
    systemd: tuple[FakeSystemd, RecordingNotifier],
) -> None:
    fake, n = systemd

    async def scenario() -> tuple[float, float]:
        task = asyncio.create_task(watchdog_task(n, interval_s=0.1))
        await _wait_pings(fake, 3)
        await asyncio.sleep(0)
        blocked_from = time.monotonic()
        time.sleep(0.5)  # a wedged loop: a coroutine that blocks instead of awaiting
        blocked_until = time.monotonic()
        await _wait_pings(fake, 3)
        task.cancel()
        return blocked_from, blocked_until

    blocked_from, blocked_until = asyncio.run(scenario())
    assert len(fake.ping_times()) >= 6  # every ping reached the socket
    sent = n.pings_sent_at
    assert not [t for t in sent if blocked_from <= t <= blocked_until]
    assert [t for t in sent if t > blocked_until]  # pings resume once the loop runs again


def test_watchdog_withheld_while_unhealthy(systemd: tuple[FakeSystemd, RecordingNotifier]) -> None:
    fake, n = systemd
    health = {"ok": True}

    async def scenario() -> int:
        task = asyncio.create_task(watchdog_task(n, interval_s=0.02, healthy=lambda: health["ok"]))
        await _wait_pings(fake, 2)
        health["ok"] = False
        count_unhealthy = len(n.pings_sent_at)
        await asyncio.sleep(0.1)  # five periods without a ping
        assert len(n.pings_sent_at) == count_unhealthy
        health["ok"] = True
        await _wait_pings(fake, 2)
        task.cancel()
        return count_unhealthy

    asyncio.run(scenario())
    assert "STATUS=unhealthy: watchdog pings withheld" in fake.messages()


def test_watchdog_task_returns_without_interval(systemd: tuple[FakeSystemd, RecordingNotifier]) -> None:
    _, n = systemd
    asyncio.run(asyncio.wait_for(watchdog_task(n, interval_s=None), 1))
    asyncio.run(asyncio.wait_for(watchdog_task(Notifier({}), interval_s=1.0), 1))


@pytest.mark.slow
def test_real_agent_under_fake_systemd(tmp_path: Path) -> None:
    """The installed CLI: READY without a broker, watchdog pings, STOPPING on SIGTERM, journal lines."""
    cli = shutil.which("edge-agent", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("the edge-agent CLI is not installed in this environment")
    example = Path(__file__).resolve().parents[2] / "deploy" / "edge-agent.example.toml"
    config = tmp_path / "config.toml"
    config.write_text(example.read_text().replace("/var/lib/edge-agent", str(tmp_path / "state")))
    fake = FakeSystemd(str(tmp_path / "notify.sock"))
    env = dict(
        os.environ,
        NOTIFY_SOCKET=str(tmp_path / "notify.sock"),
        WATCHDOG_USEC="200000",
        INVOCATION_ID="0123456789abcdef",
        EDGE_AGENT_MQTT_URL="mqtt://127.0.0.1:9",  # nothing listens: READY must not wait for it
    )
    proc = subprocess.Popen([cli, "run", "-c", str(config)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + scaled(30)
        while len(fake.ping_times()) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=scaled(30))
        deadline = time.monotonic() + scaled(5)  # STOPPING=1 was sent before exit; let the reader catch up
        while "STOPPING=1" not in fake.messages() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fake.close()
    msgs = fake.messages()
    assert proc.returncode == 0, stderr
    assert msgs[0].startswith("READY=1")
    assert msgs.count("WATCHDOG=1") >= 3
    assert msgs[-1] == "STOPPING=1"
    lines = stderr.splitlines()
    assert any(line.startswith("<4>agent.") for line in lines), stderr  # broker unreachable: a warning
    assert all(re.match(r"<[2-7]>", line) for line in lines), stderr  # journald priority prefixes
