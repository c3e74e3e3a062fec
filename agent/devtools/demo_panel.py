"""The demo's panel: ``edge-agent panel`` beside the demo agent, with a demo login (agent/ops/panel)."""

from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from edge_agent.agent.ops.panel.security import set_user

DEMO_USER, DEMO_PASSWORD = "demo", "demo-panel"  # a local demo on 127.0.0.1 only
PREFERRED_PORT = 8088


def _port() -> int:
    """8088 when it is free, else any free port."""
    for port in (PREFERRED_PORT, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port for the panel")


def start_panel(state: Path, broker_url: str, prefix: str, stack: ExitStack, time_zone: str = "UTC") -> str:
    """Start the panel (stopped with the stack) showing times in ``time_zone``; return what to print:
    its address and the login."""
    d = state / "panel"
    d.mkdir()
    set_user(d / "users.txt", DEMO_USER, "technician", DEMO_PASSWORD)
    port = _port()
    (d / "panel.toml").write_text(
        f'[panel]\nport = {port}\nusers_file = "users.txt"\ntimezone = "{time_zone}"\n'
        f'[mqtt]\nurl = "{broker_url}"\nusername = ""\nprefix = "{prefix}"\n'
    )
    log = stack.enter_context(open(d / "panel.log", "wb"))  # noqa: SIM115 (closed by the stack)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.agent", "panel", "-c", str(d / "panel.toml")], stdout=log, stderr=log
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    stack.callback(stop)
    return f"panel on http://127.0.0.1:{port}/ (log in as {DEMO_USER} / {DEMO_PASSWORD} to acknowledge and sign off)"
