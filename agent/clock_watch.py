"""Whether the wall clock can be trusted, and when it steps (issue 29).

A Pi has no real-time clock: it boots with the time of its last shutdown (fake-hwclock) or 1970,
and NTP steps it later, sometimes by days. The agent measures every interval on the monotonic
clock; the wall clock only stamps messages. This watch says (1) whether the wall clock is
synchronised, so that until it is the publisher marks its timestamps ``"tq": "unsynced"``
(docs/messages.md), and (2) when it steps, by comparing the wall-minus-monotonic offset every
second: a change of more than ``STEP_MIN_S`` is a step (NTP slews at most 0.5 ms/s), which
becomes one ``clock_step`` event saying by how much.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent.clock import span_text
from edge_agent.plugins.contract import Severity

log = logging.getLogger("agent.clock")
STEP_MIN_S = 2.0  # a larger jump of wall - monotonic within one check is a step, not a slew
CHECK_S = 1.0
TIME_ERROR = 5  # adjtimex()'s answer while the kernel's STA_UNSYNC (or STA_CLOCKERR) is set
TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")  # systemd-timesyncd: touched once synchronised


@functools.cache
def _adjtimex() -> Callable[[Any], int] | None:
    """libc's adjtimex, looked up once (a CDLL per check cost ~0.2 ms a second); None without one."""
    try:
        return ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None


def kernel_synchronised() -> bool | None:
    """The kernel's NTP state (read-only adjtimex: modes 0), None when it cannot be asked."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    buf = ctypes.create_string_buffer(512)  # larger than struct timex on every ABI; zero = read only
    state = int(adjtimex(buf))
    return None if state < 0 else state != TIME_ERROR


TIMESYNCD = (Path("/usr/lib/systemd/systemd-timesyncd"), Path("/lib/systemd/systemd-timesyncd"))


@functools.cache
def _timesyncd_installed(paths: tuple[Path, ...] = TIMESYNCD) -> bool:
    """Whether systemd-timesyncd is the time service (Debian installs one time daemon at a time)."""
    return any(p.exists() for p in paths)


def synchronised(flag: Path = TIMESYNCD_FLAG, timesyncd: tuple[Path, ...] = TIMESYNCD) -> bool | None:
    """True once systemd-timesyncd or the kernel's NTP state says so; None when neither can tell.

    Under the hardened unit (``ProtectClock=yes``, ``SystemCallFilter=~@privileged``) even a
    read-only adjtimex is refused (EPERM; systemd issue 26413), so the kernel cannot be asked: where
    systemd-timesyncd is the time service, no flag then means not yet synchronised (it writes the
    flag at its first sync), or the clock of a Pi before NTP would pass for synchronised."""
    if flag.exists():
        return True
    kernel = kernel_synchronised()
    if kernel is not None:
        return kernel
    return False if _timesyncd_installed(timesyncd) else None


class ClockWatch:
    """Checks the wall clock every second: steps become ``clock_step`` events, and ``trusted``
    tells the publisher whether to mark timestamps unsynced."""

    def __init__(
        self,
        event: Callable[[str, str, str, Severity, dict[str, Any]], None],
        mode: str = "auto",
        is_synced: Callable[[], bool | None] = synchronised,
    ) -> None:
        self._event = event
        self._mode = mode  # "auto": ask the system; "trust": never mark (an RTC the kernel does not report)
        self._is_synced = is_synced
        self._offset_s = time.time() - time.monotonic()
        self._lock = threading.Lock()  # look_for_step() runs on the loop and in a plugin's thread
        self.trusted = True
        self.steps = 0
        self._task: asyncio.Task[None] | None = None
        self._check_sync()

    def check(self) -> float | None:
        """One look: the step in seconds if the wall clock stepped since the last look, else None."""
        self._check_sync()
        return self.look_for_step()

    def look_for_step(self) -> float | None:
        """The step since the last look (announced as ``clock_step``), else None. Also called right
        before a calendar decision (a shift's report), so that a step the 1-s check has not seen
        yet is announced before it, never after."""
        with self._lock:
            offset = time.time() - time.monotonic()
            step = offset - self._offset_s
            self._offset_s = offset
        if abs(step) < STEP_MIN_S:
            return None
        self.steps += 1
        now_ms = int((time.monotonic() + offset) * 1000)
        self._event(
            "agent",
            "clock_step",
            f"the wall clock stepped {'forward' if step > 0 else 'back'} by {span_text(abs(step))}",
            Severity.WARNING,
            {"step_s": round(step, 3), "from_ms": now_ms - int(step * 1000), "to_ms": now_ms, "synced": self.trusted},
        )
        return step

    def _check_sync(self) -> None:
        if self._mode == "trust":
            return
        synced = self._is_synced()
        trusted = synced is not False  # unknown: nothing to go by, so no mark
        if trusted != self.trusted:
            log.info("wall clock %s", "synchronised" if trusted else "not synchronised: timestamps marked unsynced")
        self.trusted = trusted

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="clock-watch")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            try:
                self.check()
            except Exception:  # the watch must never take the agent down
                log.exception("clock watch failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
