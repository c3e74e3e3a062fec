"""Store-and-forward for Sparkplug: device data kept while no primary host (or broker) is there,
replayed in order as historical metrics once the node is born again.

Records keep our values, not encoded payloads: aliases and seq belong to the session that
sends them. Bounded: past ``max_records`` the oldest records go (counted)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack
from edge_agent.agent import state_files

Record = tuple[int, str, int, dict[str, Any], dict[str, str]]  # id, instance, ts_ms, values, quality


class SparkplugStore:
    def __init__(self, path: Path, max_records: int) -> None:
        self.db = state_files.connect(path)  # a corrupt file is moved aside, never a crash loop
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS rec (id INTEGER PRIMARY KEY, instance TEXT, ts INTEGER, body BLOB)")
        self.max_records = max_records
        self.dropped = 0
        self._count = self.db.execute("SELECT COUNT(*) FROM rec").fetchone()[0]

    def __len__(self) -> int:
        return int(self._count)

    def put(self, instance: str, ts_ms: int, values: Mapping[str, Any], quality: Mapping[str, str]) -> None:
        """Keep one emit (doubles stay doubles: the record is as exact as the live value)."""
        body = msgpack.packb([dict(values), dict(quality)], use_single_float=False)
        self.db.execute("INSERT INTO rec (instance, ts, body) VALUES (?, ?, ?)", (instance, ts_ms, body))
        self._count += 1
        if self._count > self.max_records:
            extra = self._count - self.max_records
            self.db.execute("DELETE FROM rec WHERE id IN (SELECT id FROM rec ORDER BY id LIMIT ?)", (extra,))
            self._count -= extra
            self.dropped += extra

    def oldest(self, n: int) -> list[Record]:
        rows = self.db.execute("SELECT id, instance, ts, body FROM rec ORDER BY id LIMIT ?", (n,)).fetchall()
        out: list[Record] = []
        for ident, instance, ts, body in rows:
            values, quality = msgpack.unpackb(body, raw=False, strict_map_key=False)
            out.append((ident, instance, ts, values, quality))
        return out

    def remove_through(self, ident: int) -> None:
        """Forget every record up to and including ``ident`` (after it was sent)."""
        cur = self.db.execute("DELETE FROM rec WHERE id <= ?", (ident,))
        self._count = max(0, self._count - cur.rowcount)

    def close(self) -> None:
        self.db.close()
