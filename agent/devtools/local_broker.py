"""A local MQTT broker for the demo and the tests: the installed mosquitto on a free port if
there is one, else an embedded pure-Python broker (amqtt) in a child process.

``python -m edge_agent.agent.devtools.local_broker --port N`` runs the embedded broker in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> bool:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class LocalBroker:
    """A broker child process on 127.0.0.1; ``stop()`` and ``start()`` may be repeated."""

    def __init__(self, port: int | None = None, *, prefer: str = "mosquitto") -> None:
        self.port = port or free_port()
        self.kind = "mosquitto" if prefer == "mosquitto" and shutil.which("mosquitto") else "embedded"
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="edge-broker-")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            conf = Path(self._dir.name) / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 100000\nset_tcp_nodelay true\n"
            )
            return [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]
        return [sys.executable, "-m", "edge_agent.agent.devtools.local_broker", "--port", str(self.port)]

    def start(self) -> LocalBroker:
        """Start the broker and wait until it accepts connections."""
        log = open(Path(self._dir.name) / "broker.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_port(self.port, 15.0):
            self.stop()
            raise RuntimeError(f"{self.kind} broker did not start on port {self.port}")
        return self

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _serve_embedded(port: int) -> None:
    from amqtt.broker import Broker

    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description="embedded MQTT broker (amqtt) on 127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    args = p.parse_args()
    try:
        asyncio.run(_serve_embedded(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
