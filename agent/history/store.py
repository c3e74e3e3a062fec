"""The history's SQLite file: one row per (instance, minute) and per (instance, hour).

A row holds the aggregates of every value the instance had in that bucket, packed: a bitmap of
the instance's keys present, a bitmap of those that were constant in the bucket (one sample, or
min = max: a report-by-exception tag), then one record per present key (10 bytes constant, 22
bytes full). The key order (the *layout*) is stored once per instance and only grows, so reading
one key out of a row is two bit counts and one ``struct.unpack_from``, with no per-key index (a
per-key index would dirty one page per key and minute: ruinous for an SD card).

The row id is ``t << 12 | instance``: time first, so every commit appends to the end of one
B-tree (a few pages per minute for the whole agent) and a time range is a row-id range.
A row is stored zlib-compressed (under its layout id negated) when that saves a tenth: the card's
writes follow the bytes. One transaction per commit interval (minutes, hour roll-ups, expiry) with a rollback journal
(``JOURNAL``): a SIGKILL or power cut loses only what was not committed, never the file.
"""

from __future__ import annotations

import json
import logging
import math
import struct
import threading
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from edge_agent.agent import state_files
from edge_agent.agent.config.declared_values import FLOAT32_MAX

log = logging.getLogger("agent.history")

MINUTE, HOUR = "minute", "hour"
BUCKET_S = {MINUTE: 60, HOUR: 3600}
# n (samples), good (samples of good quality), v (samples with a number), min, mean, max, last;
# a constant record has one value (min = mean = max = last).
# float32: 7 significant digits, plenty for a trend (the live value on data/ keeps full precision)
_RECORD = {MINUTE: struct.Struct("<HHHffff"), HOUR: struct.Struct("<IIIffff")}
_CONST = {MINUTE: struct.Struct("<HHHf"), HOUR: struct.Struct("<IIIf")}
# A rollback journal, kept (PERSIST: its header is zeroed, the file not deleted each time): a
# commit appends its new pages to the file once and copies only the few pages it changes (the
# last leaf, interior pages) into the journal; WAL writes every page twice (log, checkpoint).
# One connection under a lock reads and writes, so WAL's concurrent readers buy nothing here.
JOURNAL = "PERSIST"
INST_BITS = 12  # row id = t << 12 | instance id: at most 4095 instances per store
MAX_INSTANCES = (1 << INST_BITS) - 1
_COUNT_MAX = {MINUTE: 0xFFFF, HOUR: 0xFFFFFFFF}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY, inst INTEGER NOT NULL, key TEXT NOT NULL, unit TEXT NOT NULL DEFAULT '',
    UNIQUE(inst, key));
CREATE TABLE IF NOT EXISTS layouts(id INTEGER PRIMARY KEY, inst INTEGER NOT NULL, keys TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS minute(
    k INTEGER PRIMARY KEY, inst INTEGER NOT NULL, t INTEGER NOT NULL, layout INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hour(
    k INTEGER PRIMARY KEY, inst INTEGER NOT NULL, t INTEGER NOT NULL, layout INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS clock_steps(from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL, step_s REAL NOT NULL);
"""


@dataclass(slots=True)
class Agg:
    """The aggregate of one value over one bucket; min/mean/max/last over the samples with a number."""

    n: int = 0
    good: int = 0
    v: int = 0
    lo: float = math.nan
    total: float = 0.0
    hi: float = math.nan
    last: float = math.nan

    def add(self, value: float | None, good: bool) -> None:
        """One sample (None: a sample without a number, e.g. a sensor fault)."""
        self.n += 1
        self.good += good
        if value is None:
            return
        if self.v == 0:
            self.lo = self.hi = value
        elif value < self.lo:
            self.lo = value
        elif value > self.hi:
            self.hi = value
        self.v += 1
        self.total += value
        self.last = value

    def merge(self, other: Agg) -> None:
        """Fold a later bucket into this one (minutes into their hour)."""
        self.n += other.n
        self.good += other.good
        if other.v:
            self.lo = other.lo if self.v == 0 else min(self.lo, other.lo)
            self.hi = other.hi if self.v == 0 else max(self.hi, other.hi)
            self.v += other.v
            self.total += other.total
            self.last = other.last

    @property
    def mean(self) -> float:
        return self.total / self.v if self.v else math.nan


_AGG_FIELDS = 7  # n, good, v, lo, total, hi, last: the doubles of one key in a PackedAggs


class KeyOrder:
    """The keys of a packed bucket and their positions, shared by an instance's buckets."""

    __slots__ = ("index", "keys")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.index = {k: i for i, k in enumerate(keys)}


class PackedAggs(Mapping[str, Agg]):
    """A closed bucket's aggregates, compact: the shared key order and seven doubles per key in
    one ``array('d')``; an ``Agg`` is built when a key is read (a commit, a query).

    Closed minutes wait in memory for their commit (10 min): as a dict of ``Agg`` objects with
    their float objects a key costs ~250 B, packed 56 B (exact: counts below 2**53 are exact doubles)."""

    __slots__ = ("_order", "_vals")

    def __init__(self, order: KeyOrder, vals: array[float]) -> None:
        self._order = order
        self._vals = vals

    @classmethod
    def of(cls, aggs: Mapping[str, Agg], order: KeyOrder | None = None) -> PackedAggs:
        """Pack ``aggs``; ``order`` is reused when it lists the same keys in the same order."""
        keys = tuple(aggs)
        if order is None or order.keys != keys:
            order = KeyOrder(keys)
        vals = array("d")
        for a in aggs.values():
            vals.extend((a.n, a.good, a.v, a.lo, a.total, a.hi, a.last))
        return cls(order, vals)

    @property
    def order(self) -> KeyOrder:
        return self._order

    def __getitem__(self, key: str) -> Agg:
        i = self._order.index[key] * _AGG_FIELDS
        n, good, v, lo, total, hi, last = self._vals[i : i + _AGG_FIELDS]
        return Agg(int(n), int(good), int(v), lo, total, hi, last)

    def __contains__(self, key: object) -> bool:
        return key in self._order.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._order.keys)

    def __len__(self) -> int:
        return len(self._order.keys)


def _constant(a: Agg) -> bool:
    return a.v == 0 or (a.lo == a.hi and a.last == a.lo)


def _f32(x: float) -> float:
    """A value as float32 can hold it: beyond float32's range it is stored as +-inf, so one huge
    value (a PLC's 1e39) cannot make the whole row, and every instance's minute, fail to pack."""
    if x > FLOAT32_MAX:
        return math.inf
    if x < -FLOAT32_MAX:
        return -math.inf
    return x


def pack(layout: Sequence[str], aggs: Mapping[str, Agg], resolution: str) -> bytes:
    """A row's blob: bitmaps of the layout's keys present and constant, then their records in order."""
    rec, const, cap = _RECORD[resolution], _CONST[resolution], _COUNT_MAX[resolution]
    present = constant = 0
    parts: list[bytes] = []
    for i, key in enumerate(layout):
        a = aggs.get(key)
        if a is None or a.n == 0:
            continue
        present |= 1 << i
        counts = (min(a.n, cap), min(a.good, cap), min(a.v, cap))
        if _constant(a):
            constant |= 1 << i
            parts.append(const.pack(*counts, _f32(a.lo)))
        else:
            parts.append(rec.pack(*counts, _f32(a.lo), _f32(a.mean), _f32(a.hi), _f32(a.last)))
    nbytes = (len(layout) + 7) // 8
    return present.to_bytes(nbytes, "little") + constant.to_bytes(nbytes, "little") + b"".join(parts)


def unpack_one(blob: bytes, nkeys: int, index: int, resolution: str) -> Agg | None:
    """The record of the layout's ``index``-th key in a row, or None when the key had no sample."""
    nbytes = (nkeys + 7) // 8
    present = int.from_bytes(blob[:nbytes], "little")
    if not present >> index & 1:
        return None
    constant = int.from_bytes(blob[nbytes : 2 * nbytes], "little")
    below = (1 << index) - 1
    n_const = (constant & below).bit_count()
    rec, const = _RECORD[resolution], _CONST[resolution]
    offset = 2 * nbytes + n_const * const.size + ((present & below).bit_count() - n_const) * rec.size
    if constant >> index & 1:
        n, good, v, x = const.unpack_from(blob, offset)
        return Agg(n, good, v, x, x * v, x, x) if v else Agg(n, good, 0)
    n, good, v, lo, mean, hi, last = rec.unpack_from(blob, offset)
    return Agg(n, good, v, lo, mean * v, hi, last)


def _compressed(lid: int, raw: bytes) -> tuple[int, bytes]:
    """(layout, blob) as stored: zlib-compressed under the negated layout id when that saves at
    least a tenth (the counts repeat and a value's min/mean/max/last share their leading bytes:
    the card's writes follow the bytes), else as packed."""
    packed = zlib.compress(raw, 6)
    return (-lid, packed) if len(packed) < len(raw) * 0.9 else (lid, raw)


def unpack_all(blob: bytes, layout: Sequence[str], resolution: str) -> dict[str, Agg]:
    """Every record of a row, by key."""
    out: dict[str, Agg] = {}
    for i, key in enumerate(layout):
        a = unpack_one(blob, len(layout), i, resolution)
        if a is not None:
            out[key] = a
    return out


class Point(NamedTuple):
    """One bucket of one value, as a query answers it (a tuple: 30 days of minutes are 43,200)."""

    t_s: int
    min: float | None
    mean: float | None
    max: float | None
    last: float | None
    n: int
    good_share: float

    def row(self) -> list[float | int | None]:
        return list(self)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def point(t_s: int, a: Agg) -> Point:
    share = round(a.good / a.n, 4) if a.n else 0.0
    return Point(t_s, _num(a.lo), _num(a.mean), _num(a.hi), _num(a.last), a.n, share)


def _read_one(
    rows: Iterable[tuple[int, int, bytes]], where: Mapping[int, tuple[int, int]], resolution: str
) -> list[Point]:
    """The points of one key (``where``: layout -> (index, key count)) out of packed rows.

    The hot loop of a query (43,200 rows for 30 days of minutes): the offset arithmetic of
    ``unpack_one`` inlined, one tuple per point, no intermediate objects."""
    rec, const = _RECORD[resolution].unpack_from, _CONST[resolution].unpack_from
    rsize, csize = _RECORD[resolution].size, _CONST[resolution].size
    out: list[Point] = []
    append = out.append
    for t, lid, blob in rows:
        pos = where.get(lid)
        if pos is None:
            continue
        index, nkeys = pos
        nb = (nkeys + 7) >> 3
        present = int.from_bytes(blob[:nb], "little")
        if not present >> index & 1:
            continue
        constant = int.from_bytes(blob[nb : 2 * nb], "little")
        below = (1 << index) - 1
        nc = (constant & below).bit_count()
        offset = 2 * nb + nc * csize + ((present & below).bit_count() - nc) * rsize
        if constant >> index & 1:
            n, good, v, x = const(blob, offset)
            x = x if v else None
            append(Point(t, x, x, x, x, n, round(good / n, 4) if n else 0.0))
        else:
            n, good, v, lo, mean, hi, last = rec(blob, offset)
            append(Point(t, lo, mean, hi, last, n, round(good / n, 4) if n else 0.0))
    return out


class HistoryStore:
    """The SQLite file; every method may be called from any one thread at a time (a lock guards it)."""

    def __init__(self, path: Path, journal: str = JOURNAL) -> None:
        self.path = path
        self._lock = threading.RLock()  # commit() holds it across the helpers that take it too
        self.db = state_files.connect(path)  # a corrupt file is moved aside, never a crash loop
        self.db.execute(f"PRAGMA journal_mode={journal}")
        # a rollback journal is safe across a power cut only with FULL (its fsyncs run in the
        # writer thread, once per commit interval); WAL is safe with NORMAL
        self.db.execute(f"PRAGMA synchronous={'NORMAL' if journal.upper() == 'WAL' else 'FULL'}")
        self.db.executescript(_SCHEMA)
        self._inst: dict[str, int] = dict(self.db.execute("SELECT name, id FROM instances").fetchall())
        self._layouts: dict[int, tuple[int, list[str]]] = {}  # inst id -> (layout id, keys)
        self._layout_keys: dict[int, list[str]] = {}  # layout id -> keys
        for lid, inst, keys in self.db.execute("SELECT id, inst, keys FROM layouts ORDER BY id"):
            self._layout_keys[lid] = json.loads(keys)
            self._layouts[inst] = (lid, self._layout_keys[lid])
        self._units: dict[tuple[int, str], str] = {
            (i, k): u for i, k, u in self.db.execute("SELECT inst, key, unit FROM series")
        }
        self.commits = 0

    # -- writing ------------------------------------------------------------------------------------
    def _inst_id(self, name: str) -> int:
        iid = self._inst.get(name)
        if iid is None:
            if len(self._inst) >= MAX_INSTANCES:
                raise ValueError(f"history: more than {MAX_INSTANCES} instances in one store")
            cur = self.db.execute("INSERT INTO instances(name) VALUES (?)", (name,))
            iid = self._inst[name] = int(cur.lastrowid or 0)
        return iid

    def _layout(self, iid: int, keys: Iterable[str], units: Mapping[str, str]) -> tuple[int, list[str]]:
        """The instance's layout, grown by new keys (a new layout id; older rows keep theirs)."""
        lid, layout = self._layouts.get(iid, (0, []))
        new = [k for k in keys if k not in set(layout)]
        if new or not lid:
            layout = [*layout, *sorted(set(new))]
            cur = self.db.execute("INSERT INTO layouts(inst, keys) VALUES (?, ?)", (iid, json.dumps(layout)))
            lid = int(cur.lastrowid or 0)
            self._layouts[iid] = (lid, layout)
            self._layout_keys[lid] = layout
        for k in keys:
            known = self._units.get((iid, k))
            unit = units.get(k) or known or ""  # a write that knows no unit keeps the stored one
            if known != unit:
                self.db.execute(
                    "INSERT INTO series(inst, key, unit) VALUES (?, ?, ?) "
                    "ON CONFLICT(inst, key) DO UPDATE SET unit = excluded.unit",
                    (iid, k, unit),
                )
                self._units[(iid, k)] = unit
        return lid, layout

    def write(
        self,
        rows: Iterable[tuple[str, int, Mapping[str, Agg]]],
        units: Mapping[str, Mapping[str, str]],
        resolution: str = MINUTE,
        clock_steps: Iterable[tuple[int, int, float]] = (),
    ) -> int:
        """Write closed buckets ``(instance, t_s, {key: Agg})`` and clock steps ``(from_ms, to_ms,
        step_s)`` in one transaction; rows written."""
        with self._transaction():
            self._steps(clock_steps)
            return self._insert(rows, units, resolution)

    def commit(
        self,
        minutes: Iterable[tuple[str, int, Mapping[str, Agg]]],
        units: Mapping[str, Mapping[str, str]],
        *,
        roll_before_s: int,
        expire_at: tuple[int, float, float] | None = None,
        clock_steps: Iterable[tuple[int, int, float]] = (),
    ) -> int:
        """One transaction for a commit interval: the closed minutes and clock steps, the complete
        hours before ``roll_before_s`` rolled up, rows past their age deleted (``expire_at``:
        now_s, minute_days, hour_days); minute rows written. Each transaction costs the journal
        and its syncs whatever it carries, so the history writes one per interval, not one per
        hour row."""
        with self._transaction():
            self._steps(clock_steps)
            count = self._insert(minutes, units, MINUTE)
            for iid, hour_s in self.hours_to_roll(roll_before_s):
                self._roll(iid, hour_s)
            if expire_at is not None:
                self._expire_by_age(*expire_at)
        return count

    def _steps(self, clock_steps: Iterable[tuple[int, int, float]]) -> None:
        self.db.executemany("INSERT INTO clock_steps(from_ms, to_ms, step_s) VALUES (?, ?, ?)", clock_steps)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.commits += 1

    def _insert(
        self,
        rows: Iterable[tuple[str, int, Mapping[str, Agg]]],
        units: Mapping[str, Mapping[str, str]],
        resolution: str,
    ) -> int:
        count = 0
        for instance, t_s, aggs in rows:
            iid = self._inst_id(instance)
            lid, layout = self._layout(iid, aggs, units.get(instance, {}))
            stored_lid, blob = _compressed(lid, pack(layout, aggs, resolution))
            self.db.execute(
                f"INSERT OR REPLACE INTO {resolution}(k, inst, t, layout, data) VALUES (?, ?, ?, ?, ?)",
                (t_s << INST_BITS | iid, iid, t_s, stored_lid, blob),
            )
            count += 1
        return count

    # -- reading ------------------------------------------------------------------------------------
    def _rows(self, iid: int, since_s: int, until_s: int, resolution: str) -> Iterator[tuple[int, int, bytes]]:
        """(t, layout, packed row) in time order; a compressed row (negative layout) inflated."""
        decompress = zlib.decompress
        for t, lid, blob in self.db.execute(
            f"SELECT t, layout, data FROM {resolution} WHERE k >= ? AND k < ? AND inst = ? ORDER BY k",
            (max(0, since_s) << INST_BITS, max(0, until_s) << INST_BITS, iid),
        ):
            yield (t, -lid, decompress(blob)) if lid < 0 else (t, lid, blob)

    def query(self, instance: str, key: str, since_s: int, until_s: int, resolution: str = MINUTE) -> list[Point]:
        """Points of one value between two times (bucket starts, seconds since the epoch)."""
        with self._lock:
            iid = self._inst.get(instance)
            if iid is None:
                return []
            where: dict[int, tuple[int, int]] = {}  # layout -> (index of key, key count)
            for lid, keys in self._layout_keys.items():
                if key in keys:
                    where[lid] = (keys.index(key), len(keys))
            return _read_one(self._rows(iid, since_s, until_s, resolution), where, resolution)

    def keys(self, instance: str | None = None) -> dict[str, dict[str, str]]:
        """{instance: {key: unit}} of everything the store has."""
        with self._lock:
            names = {i: n for n, i in self._inst.items()}
            out: dict[str, dict[str, str]] = {}
            for (iid, key), unit in sorted(self._units.items()):
                name = names.get(iid)
                if name is not None and (instance is None or name == instance):
                    out.setdefault(name, {})[key] = unit
            return out

    def newest_minute_s(self) -> int:
        """The start of the newest minute row (-60 when there is none)."""
        with self._lock:
            newest = self.db.execute(f"SELECT MAX(k) >> {INST_BITS} FROM minute").fetchone()[0]
        return -60 if newest is None else int(newest)

    def clock_steps(self) -> list[tuple[int, int, float]]:
        """Every wall-clock step the agent saw while keeping this history: (from_ms, to_ms, step_s)."""
        with self._lock:
            return [(int(f), int(t), float(s)) for f, t, s in self.db.execute("SELECT * FROM clock_steps")]

    def unit(self, instance: str, key: str) -> str:
        iid = self._inst.get(instance)
        return "" if iid is None else self._units.get((iid, key), "")

    # -- hours and retention --------------------------------------------------------------------------
    def hours_to_roll(self, before_s: int) -> list[tuple[int, int]]:
        """(inst id, hour start) of complete hours that have minutes but no hour row yet (looked
        for from the newest hour row on: hours roll in order, also after a crash)."""
        with self._lock:
            # the newest hour row before now: rows of a clock that was ahead must not stop the roll-up
            newest = (
                self.db.execute(
                    f"SELECT MAX(k) >> {INST_BITS} FROM hour WHERE k < ?", (max(0, before_s) << INST_BITS,)
                ).fetchone()[0]
                or 0
            )
            rows = self.db.execute(
                "SELECT DISTINCT m.inst, m.t / 3600 * 3600 AS h FROM minute m WHERE m.k >= ? AND m.k < ? "
                f"AND NOT EXISTS (SELECT 1 FROM hour WHERE hour.k = (m.t / 3600 * 3600) << {INST_BITS} | m.inst)",
                (newest << INST_BITS, max(0, before_s) << INST_BITS),
            ).fetchall()
        return [(int(i), int(t)) for i, t in rows]

    def roll_hour(self, iid: int, hour_s: int) -> None:
        """Merge an hour's minute rows into its hour row (a transaction of its own)."""
        with self._transaction():
            self._roll(iid, hour_s)

    def _roll(self, iid: int, hour_s: int) -> None:
        merged: dict[str, Agg] = {}
        for _t, lid, blob in self._rows(iid, hour_s, hour_s + 3600, MINUTE):
            for key, a in unpack_all(blob, self._layout_keys[lid], MINUTE).items():
                merged.setdefault(key, Agg()).merge(a)
        name = next(n for n, i in self._inst.items() if i == iid)
        if merged:
            self._insert([(name, hour_s, merged)], {}, HOUR)

    def size_bytes(self) -> int:
        """Bytes in use (pages not on the free list): what ``max_mb`` bounds."""
        with self._lock:
            pages = self.db.execute("PRAGMA page_count").fetchone()[0]
            free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
            size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def expire(self, now_s: int, minute_days: float, hour_days: float, max_bytes: int) -> int:
        """Delete rows past their age, then the oldest (minutes first) until under ``max_bytes``."""
        with self._transaction():
            deleted = self._expire_by_age(now_s, minute_days, hour_days)
        return deleted + self.shrink(max_bytes)

    def _expire_by_age(self, now_s: int, minute_days: float, hour_days: float) -> int:
        deleted = 0
        for table, days in ((MINUTE, minute_days), (HOUR, hour_days)):
            before = max(0, now_s - int(days * 86400)) << INST_BITS
            deleted += self.db.execute(f"DELETE FROM {table} WHERE k < ?", (before,)).rowcount
        return deleted

    def shrink(self, max_bytes: int) -> int:
        """Delete the oldest days (minutes first) until the used pages are under ``max_bytes``."""
        deleted = 0
        while self.size_bytes() > max_bytes:
            n = self._drop_oldest_day()
            if n == 0:
                break
            deleted += n
        return deleted

    def _drop_oldest_day(self) -> int:
        with self._lock:
            for table in (MINUTE, HOUR):
                oldest = self.db.execute(f"SELECT MIN(k) >> {INST_BITS} FROM {table}").fetchone()[0]
                if oldest is None:
                    continue
                if table == HOUR and self.db.execute("SELECT COUNT(*) FROM hour").fetchone()[0] <= 24:
                    continue  # never delete the last day of hours to make room
                n = self.db.execute(f"DELETE FROM {table} WHERE k < ?", ((oldest + 86400) << INST_BITS,)).rowcount
                log.info("history: over max_mb, dropped the oldest day of %ss (%d rows)", table, n)
                return int(n)
        return 0

    def close(self) -> None:
        with self._lock:
            try:
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self.db.close()
