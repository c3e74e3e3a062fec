"""Per-topic sequence numbers that persist across restarts, in a small SQLite file (WAL).

Writing every number to disk would wear an SD card, so numbers are *reserved* in blocks: the
file holds, per topic, a number no message has used yet. A clean stop writes the exact last
number, so the next run continues at last + 1. After a crash the run resumes past the reserved
block: a number is never repeated (a repeat would make consumers drop a new message as a
duplicate); the unused numbers are reported by ``skipped`` so they can be announced.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK_MIN = 32


class SeqStore:
    """Hands out seq numbers per topic; ``close()`` makes the next run continue without a gap."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS seq (topic TEXT PRIMARY KEY, reserved INTEGER NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = self._db.execute("SELECT value FROM meta WHERE key='clean'").fetchone()
        self.was_clean = row is None or row[0] == "1"
        self._reserved: dict[str, int] = dict(self._db.execute("SELECT topic, reserved FROM seq").fetchall())
        self._last: dict[str, int] = dict(self._reserved)  # next = reserved + 1 in both cases
        self._window: dict[str, tuple[float, int]] = {}  # topic -> (since, messages)
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '0')")

    def peek(self, topic: str) -> int:
        """The last number used for ``topic`` (0 if none)."""
        return self._last.get(topic, 0)

    def next(self, topic: str) -> int:
        """Return the next number for ``topic``, reserving a new block on disk when needed."""
        seq = self._last.get(topic, 0) + 1
        self._last[topic] = seq
        since, count = self._window.get(topic, (time.monotonic(), 0))
        self._window[topic] = (since, count + 1)
        if seq > self._reserved.get(topic, 0):
            self._reserve(topic, seq)
        return seq

    def _reserve(self, topic: str, seq: int) -> None:
        # Size the block to about a minute of this topic's traffic, so writes stay rare.
        now = time.monotonic()
        since, count = self._window.get(topic, (now, 0))
        block = max(BLOCK_MIN, int(count / max(now - since, 10.0) * 60))
        self._window[topic] = (now, 0)
        self._reserved[topic] = seq + block
        self._db.execute("INSERT OR REPLACE INTO seq VALUES (?, ?)", (topic, seq + block))

    def close(self) -> None:
        """Write the exact last numbers and mark the stop clean."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO seq VALUES (?, ?)", list(self._last.items()))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '1')")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
