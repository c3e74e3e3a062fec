"""Storage helpers of the spool: fault classification, moving a corrupt file aside, the
background syncer that makes commits durable off the event loop, and the drain rate limiter."""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.drivers.named_thread import NamedThread

log = logging.getLogger("agent.spool")

DB_ERRORS = (sqlite3.Error, OSError)


class Fault(enum.StrEnum):
    DISK_FULL = "disk_full"
    READ_ONLY = "read_only"
    CORRUPT = "corrupt"
    IO_ERROR = "io_error"


def classify(exc: BaseException) -> Fault:
    """Map a SQLite or OS error onto a fault kind."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        base = code & 0xFF
        if base == sqlite3.SQLITE_FULL:
            return Fault.DISK_FULL
        if base in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            return Fault.READ_ONLY
        if base in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            return Fault.CORRUPT
    errno = getattr(exc, "errno", None)
    if errno == 28:  # ENOSPC
        return Fault.DISK_FULL
    if errno in (13, 30):  # EACCES, EROFS
        return Fault.READ_ONLY
    return Fault.IO_ERROR


def move_aside(path: Path) -> Path:
    """Rename a database file (and its -wal/-shm) with a UTC timestamp; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{aside}{suffix}")
    return aside


class Syncer:
    """Makes commits durable from a thread: every interval in which something was committed it
    calls ``sync`` (the spool's fdatasync of what it appended). With ``synchronous=NORMAL`` this
    bounds what a power cut can take, while the event loop never waits for the storage device
    (an fsync on an SD card can take tens or hundreds of ms)."""

    def __init__(self, sync: Callable[[], None], interval_s: float) -> None:
        self.sync, self.interval_s = sync, interval_s
        self.dirty = threading.Event()
        self.syncs = 0
        self._stop = threading.Event()
        self._thread = NamedThread(target=self._run, name="spool-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                if self.dirty.is_set():
                    self.dirty.clear()
                    self.syncs += 1
                    self.sync()
        except OSError as exc:
            log.error("spool: background sync failed, none until restart: %s", exc)

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)


class TokenBucket:
    """At most ``rate_per_s`` takes per second, with a burst of 50 ms worth."""

    def __init__(self, rate_per_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s * 0.05)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate_per_s)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate_per_s)
