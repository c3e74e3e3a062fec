"""Serial ports with no hardware: a pty whose far end the test plays, and a linked pair of ptys.

:class:`PtyInstrument` is a pty the driver opens by path (``.port``, e.g. ``/dev/pts/7``) while the
test plays the instrument on the other side: ``write``/``read``, or ``serve(answer)`` which
answers each received line from a thread. :class:`LinkedPtys` joins two pty devices (``.a`` and
``.b``) by a copying thread, for code that opens both ends by path (a pymodbus RTU server and
client: a single pty does not work for pymodbus serial). Both are context managers and always
close what they opened.
"""

from __future__ import annotations

import os
import re
import select
import threading
import tty
from collections.abc import Callable
from types import TracebackType

_EOL = re.compile(rb"\r\n|\r|\n")


class PtyInstrument:
    """The test's side of a serial line; the driver opens ``port``."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        self.port = os.ttyname(self._slave)
        self.received: list[bytes] = []  # lines seen by serve()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        """Send bytes to the driver."""
        os.write(self.master, data)

    def read(self, n: int = 4096, timeout_s: float = 1.0) -> bytes:
        """Bytes the driver sent (b"" if none arrived within the timeout)."""
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        return os.read(self.master, n) if ready else b""

    def serve(self, answer: Callable[[bytes], bytes | None]) -> PtyInstrument:
        """Answer every line the driver sends with ``answer(line)`` (None: stay silent), from a thread."""
        self._thread = threading.Thread(target=self._run, args=(answer,), name="pty-instrument", daemon=True)
        self._thread.start()
        return self

    def _run(self, answer: Callable[[bytes], bytes | None]) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self.read(timeout_s=0.02)
            except OSError:
                return
            *lines, buf = _EOL.split(buf + chunk)
            for line in filter(None, lines):
                self.received.append(line)
                reply = answer(line)
                if reply:
                    self.write(reply)

    def close(self) -> None:
        """Stop the answering thread and close both ends (safe twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self.master = self._slave = -1

    def __enter__(self) -> PtyInstrument:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class LinkedPtys:
    """Two pty devices, ``a`` and ``b``, wired together like a null-modem cable."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        ends = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            tty.setraw(master)
            self._fds += [master, slave]
            ends.append((master, os.ttyname(slave)))
        (self._ma, self.a), (self._mb, self.b) = ends
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._copy, name="pty-link", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        peer = {self._ma: self._mb, self._mb: self._ma}
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select(list(peer), [], [], 0.02)
                for fd in ready:
                    os.write(peer[fd], os.read(fd, 4096))
            except OSError:  # an end was closed (the driver hung up): keep the other side alive
                self._stop.wait(0.02)

    def close(self) -> None:
        """Stop copying and close every end (safe twice)."""
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self) -> LinkedPtys:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
