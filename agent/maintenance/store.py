"""``maintenance.sqlite`` in the state dir: buffered plugin state and permanent records.

Values saved by plugins (production shift figures, maintenance counters) are kept in memory and
written every ``flush_s`` seconds, only the keys that changed, in ONE transaction: a SIGKILL loses
at most one interval, and an SD card sees one small commit per interval instead of one per poll.
Records (calibrations, maintenance done, shift reports) are appended and committed at once: they
are rare and must never be lost. The file is independent of the config, so records survive
restarts, remote config pushes and upgrades (the schema is only ever extended).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent.clock import now_ms
from edge_agent.plugins.contract import MemoryStore

log = logging.getLogger("agent.maintenance.store")

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
    " updated_ms INTEGER NOT NULL, PRIMARY KEY (ns, key))",
    "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
    " ns TEXT NOT NULL, ts_ms INTEGER NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS records_kind ON records (kind, ns, id)",
)


class SqliteStore:
    """The agent's StateStore (plugins/contract.py); thread-safe, one connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0  # transactions written, for the writes-per-hour figure
        self.rows_written = 0
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], Any] = {}
        self._dirty: set[tuple[str, str]] = set()
        self.fault = ""  # why the file cannot be used: state and records are then kept in memory only
        self._memory = MemoryStore()
        try:
            self._db: sqlite3.Connection | None = self._open(path)
        except (sqlite3.Error, OSError) as exc:
            self.fault = f"cannot use {path}: {exc}"
            log.error("maintenance store: %s; state and records are kept in memory for this run", self.fault)
            self._db = None

    def _open(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")  # one process: no -shm index dirtied at every commit
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process kill
            for stmt in SCHEMA:
                db.execute(stmt)
            for ns, key, value in db.execute("SELECT ns, key, value FROM kv"):
                self._values[(ns, key)] = msgpack.unpackb(value, raw=False, strict_map_key=False)
        except BaseException:
            db.close()
            raise
        return db

    def load(self, ns: str, key: str) -> Any:
        with self._lock:
            return self._values.get((ns, key))

    def save(self, ns: str, key: str, value: Any) -> None:
        with self._lock:
            self._values[(ns, key)] = value
            self._dirty.add((ns, key))

    def forget(self, ns: str, key: str) -> None:
        """Drop a saved value (written at the next flush)."""
        with self._lock:
            self._values.pop((ns, key), None)
            self._dirty.add((ns, key))

    def flush(self) -> int:
        """Write the changed values in one transaction; return how many rows were written."""
        with self._lock:
            dirty = [(k, self._values.get(k)) for k in self._dirty]
            self._dirty.clear()
        if not dirty or self._db is None:
            return 0
        now = now_ms()
        try:
            with self._lock:
                self._db.execute("BEGIN")
                for (ns, key), value in dirty:
                    if value is None:
                        self._db.execute("DELETE FROM kv WHERE ns=? AND key=?", (ns, key))
                    else:
                        blob = msgpack.packb(value, use_bin_type=True)
                        self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?)", (ns, key, blob, now))
                self._db.execute("COMMIT")
                self.commits += 1
                self.rows_written += len(dirty)
        except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
            log.error("maintenance store: flush failed (%s); kept in memory, retried next interval", exc)
            with self._lock:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._dirty.update(k for k, _ in dirty)
            return 0
        return len(dirty)

    def record(self, kind: str, ns: str, body: dict[str, Any]) -> int:
        """Append a permanent record and commit at once; return its id."""
        ts = int(body.get("ts_ms") or now_ms())
        if self._db is None:
            return self._memory.record(kind, ns, body)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO records (kind, ns, ts_ms, body) VALUES (?, ?, ?, ?)",
                (kind, ns, ts, msgpack.packb(body, use_bin_type=True)),
            )
            self.commits += 1
            self.rows_written += 1
            return int(cur.lastrowid or 0)

    def records(self, kind: str, ns: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; each body gets its ``id`` and ``ts_ms``."""
        if self._db is None:
            return self._memory.records(kind, ns, limit)
        sql = "SELECT id, ts_ms, body FROM records WHERE kind=?" + (" AND ns=?" if ns is not None else "")
        params: tuple[Any, ...] = (kind, ns) if ns is not None else (kind,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        out = []
        for rid, ts, body in rows:
            d = msgpack.unpackb(body, raw=False, strict_map_key=False)
            d.setdefault("ts_ms", ts)
            out.append({"id": rid, **d})
        return out

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
