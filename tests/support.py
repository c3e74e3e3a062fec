"""Helpers shared by the tests: a subscriber that decodes envelopes, and an agent subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import paho.mqtt.client as mqtt
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.mqtt_session import set_nodelay
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_LOOP_S = 0.008  # _loop_s() on the idle 2-core test VM


def _loop_s() -> float:
    """Seconds one fixed pure-Python loop takes here (the median of 5 runs)."""
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        sum(i * i for i in range(100_000))
        runs.append(time.perf_counter() - t0)
    return sorted(runs)[2]


def _measure_factor() -> float:
    """How much slower this machine is now than the test VM, idle (1 to the cap, 8 by default).

    EDGE_AGENT_TEST_TIME_CAP raises the cap: make test-arm64 sets 40, as emulated Python ran that
    loop 9-10x slower than native here (21-28x the idle VM at load 10, 67-87x at niceness 10-19).
    """
    floor = float(os.environ.get("EDGE_AGENT_TEST_TIME_FACTOR") or 1.0)
    cap = float(os.environ.get("EDGE_AGENT_TEST_TIME_CAP") or 8.0)
    return min(cap, max(1.0, floor, _loop_s() / REFERENCE_LOOP_S))


_measured = [time.monotonic(), _measure_factor()]  # when, and the factor then


def time_factor() -> float:
    """The factor waits are scaled by, measured again when the last one is over 10 s old.

    An emulated arm64 Pi measures 3-4, a loaded VM 2-3; measured again because the load of a
    shared machine changes during a run. EDGE_AGENT_TEST_TIME_FACTOR sets a floor.
    """
    if time.monotonic() - _measured[0] > 10.0:
        _measured[:] = [time.monotonic(), _measure_factor()]
    return _measured[1]


TIME_FACTOR = _measured[1]  # at the start of the run (the per-test timeout is scaled by it)


def scaled(seconds: float) -> float:
    """A timeout in seconds of the idle test VM, scaled to this machine (a deadline, never a sleep)."""
    return seconds * time_factor()


@dataclass
class Received:
    topic: str
    env: dict[str, Any]
    retain: bool
    at: float
    size: int


class Subscriber:
    """A paho client that records every decoded message; ``wait_for`` polls a predicate."""

    def __init__(self, url: str, topics: list[str] | None = None) -> None:
        host, port = url.split("//")[1].split(":")
        self.messages: list[Received] = []
        self.raw: list[tuple[str, bytes]] = []
        self._lock = threading.Condition()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        topics = topics or ["#"]

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any = None) -> None:
            c.subscribe([(t, 1) for t in topics])
            self._connected.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_socket_open = lambda c, u, sock: set_nodelay(sock)
        self.client.connect(host, int(port), 30)
        self.client.loop_start()
        assert self._connected.wait(scaled(10)), "subscriber could not connect"
        assert self._subscribed.wait(scaled(10)), "the broker did not acknowledge the subscription"

    def _on_message(self, c: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.raw.append((m.topic, m.payload))
            try:
                env = codec.decode(m.payload)
            except Exception:
                return
            self.messages.append(Received(m.topic, env, bool(m.retain), time.monotonic(), len(m.payload)))
            self._lock.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Poll `pred` until it is true; `timeout` is in idle-VM seconds (scaled to this machine)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            result = pred()
            if result:
                return result
            with self._lock:
                self._lock.wait(min(left, 0.05))
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class AgentProcess:
    """``edge-agent run`` as a child process; always stopped by ``stop()``/``kill()``."""

    def __init__(
        self, config: Path, url: str, *, log_path: Path | None = None, extra_env: dict[str, str] | None = None
    ) -> None:
        env = {**os.environ, "EDGE_AGENT_MQTT_URL": url, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.log_path = log_path or config.with_suffix(".log")
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.agent", "run", "-c", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; ``timeout`` is in idle-VM seconds (scaled to this machine)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()


def write_config(path: Path, *, state_dir: Path, instances: str, agent_id: str = "t1", extra: str = "") -> Path:
    """Write a small TOML config for an end-to-end test."""
    path.write_text(
        f'[agent]\nid = "{agent_id}"\nstate_dir = "{state_dir}"\n\n[mqtt]\nprefix = "edge"\n'
        f"reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n{extra}\n{instances}"
    )
    return path


STEADY = {
    "name": "steady",
    "plugin": "values",
    "interval_s": 0.1,
    "driver": {"type": "sim", "profile": "ramp", "amplitude": 1000.0, "period_s": 1000},
    "options": {"heartbeat_s": 0},
}
OTHER = {"name": "other", "plugin": "values", "interval_s": 0.5, "driver": {"type": "sim", "profile": "square"}}

BASE = """
[[instances]]
name = "steady"
plugin = "values"
interval_s = 0.1
driver = { type = "sim", profile = "ramp", amplitude = 1000.0, period_s = 1000 }
options = { heartbeat_s = 0 }

[[instances]]
name = "other"
plugin = "values"
interval_s = 0.5
driver = { type = "sim", profile = "square" }
"""


class RemoteAgent:
    """A broker subscriber plus an agent process on BASE, with a push() helper."""

    def __init__(self, tmp: Path, broker: Any, extra: str = "", env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.cfg = write_config(
            tmp / "agent.toml",
            state_dir=tmp / "state",
            instances=BASE,
            # tests push and command as fast as they can: no inbound flood limit in their way
            # and the 3-s window a pushed instance has to prove itself grows with the machine's slowness
            extra=f"[remote]\nmin_interval_s = 0\nverify_timeout_s = {scaled(3):.1f}\n"
            + "inbound_per_s = 100000\ninbound_burst = 100000\n"
            + extra,
        )
        self.sub = Subscriber(broker.url)
        self.proc = AgentProcess(self.cfg, broker.url, extra_env=env)
        self.sub.wait_for(lambda: len(self.sub.on("edge/t1/data/steady")) >= 3, 20, "agent running")
        self.n = 0

    def push(self, doc: Any, *, raw: bytes | None = None, timeout: float = 15) -> dict[str, Any]:
        before = len(self.sub.on("edge/t1/config/result"))
        payload = raw if raw is not None else msgpack.packb(doc)
        self.sub.client.publish("edge/t1/config/set", payload, qos=1)
        self.sub.wait_for(lambda: len(self.sub.on("edge/t1/config/result")) > before, timeout, "a config result")
        return self.sub.on("edge/t1/config/result")[before].env["d"]  # type: ignore[no-any-return]

    def close(self) -> None:
        self.proc.kill()
        self.sub.close()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``edge-agent ARGS`` as a child process, never with the developer's own CLI config.

    ``timeout`` is in idle-VM seconds (scaled to this machine)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT_")}
    full_env["EDGE_AGENT_CLI_CONFIG"] = os.devnull + ".absent"  # never the developer's own file
    full_env.update(env or {})
    if full_env["EDGE_AGENT_CLI_CONFIG"].endswith(".absent"):
        del full_env["EDGE_AGENT_CLI_CONFIG"]
        full_env["HOME"] = str(Path(os.devnull).parent / "nonexistent-home")
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.agent", *args],
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        env=full_env,
        cwd=ROOT,
    )


def cmd(a: RemoteAgent, name: str, req: dict[str, Any] | None = None, raw: bytes | None = None) -> dict[str, Any]:
    """Send a command to the agent t1 and return its answer's ``d`` map."""
    topic = f"edge/t1/cmd/{name}/result"
    before = len(a.sub.on(topic))
    a.sub.client.publish(f"edge/t1/cmd/{name}", raw if raw is not None else msgpack.packb(req or {}), qos=1)
    a.sub.wait_for(lambda: len(a.sub.on(topic)) > before, 10, f"answer to {name}")
    return a.sub.on(topic)[before].env["d"]  # type: ignore[no-any-return]
