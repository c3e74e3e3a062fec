"""A serial line instrument behind a pty, for the plant simulator: the agent's ``serial_line``
driver opens the pty's path (a symlink at the configured ``port``) with ``backend = "hw"``.

Polled instruments (``request`` set) answer each request line; streaming ones (no request) send
one line a second. Answers come from the same emulator and thermal model as the in-process
``sim`` backend.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import tty
from pathlib import Path
from typing import Any

import msgspec
from edge_agent.drivers.max318xx.simulator import SimFault, ThermalModel, ThermalSim
from edge_agent.drivers.serial_line.driver import InstrumentEmulator


class SerialInstrument:
    """One emulated instrument on a pty whose slave is linked at ``path``."""

    def __init__(self, path: str, emulator_args: tuple[str, str, str], model: ThermalModel) -> None:
        self.path = path
        self.template, self.regex, self.request = emulator_args
        self.model = model
        self.t0 = time.monotonic()
        groups = list(re.compile(self.regex).groupindex) or ["t"]
        self.emulator = InstrumentEmulator(self.template, lambda: self._values(groups), self.request)
        self.master = self.slave = -1
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_driver(cls, drv: dict[str, Any]) -> SerialInstrument:
        """From a ``serial_line`` driver table (its ``sim`` and ``sim_response`` keys)."""
        model = ThermalModel(msgspec.convert(drv.get("sim", {}), ThermalSim))
        regex = drv.get("response_regex", r"(?P<t>[-+]?\d+(?:\.\d+)?)")
        return cls(
            str(drv.get("port")), (drv.get("sim_response", "{t:+.2f}\r\n"), regex, drv.get("request", "")), model
        )

    def _values(self, groups: list[str]) -> dict[str, float]:
        base = self.model.process_c(time.monotonic() - self.t0)
        return {g: base + 0.5 * i for i, g in enumerate(groups)}

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make the pty, link it at ``path`` and start answering."""
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        link = Path(self.path)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.ttyname(self.slave))
        os.set_blocking(self.master, False)
        loop.add_reader(self.master, self._on_readable)
        if not self.request:
            self._timer = loop.call_later(1.0, self._stream, loop)

    def _faulty(self) -> bool:
        return self.model.fault(time.monotonic() - self.t0) is not SimFault.NONE

    def _on_readable(self) -> None:
        try:
            self._buf += os.read(self.master, 4096)
        except OSError:
            return
        while b"\n" in self._buf or b"\r" in self._buf:
            cut = min(i for i in (self._buf.find(b"\n"), self._buf.find(b"\r")) if i >= 0)
            line, self._buf = self._buf[: cut + 1], self._buf[cut + 1 :].lstrip(b"\r\n")
            if not self._faulty():
                for chunk in self.emulator.answer(line):
                    os.write(self.master, chunk)

    def _stream(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._faulty():
            for chunk in self.emulator.answer(b""):
                try:
                    os.write(self.master, chunk)
                except BlockingIOError:
                    pass  # nobody reads: a real instrument's line is lost too
        self._timer = loop.call_later(1.0, self._stream, loop)

    def stats(self) -> dict[str, Any]:
        return {"path": self.path, "requests": self.emulator.requests, "mode": self.emulator.mode}

    def close(self) -> None:
        """Stop answering, remove the link and the pty."""
        if self._timer is not None:
            self._timer.cancel()
        if self.master >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self.master)
            except RuntimeError:
                pass
            os.close(self.master)
            os.close(self.slave)
            self.master = self.slave = -1
        link = Path(self.path)
        if link.is_symlink():
            link.unlink()
