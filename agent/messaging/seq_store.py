"""Per-topic sequence numbers that persist across restarts, in a small SQLite file (WAL).

The file holds, per topic, an upper bound of every number that *may have reached a broker*
(``reserved``). A clean stop writes the exact last number, so the next run continues at last + 1.
After a crash the next run starts above ``reserved`` (and above every number still waiting in the
spool, see ``seed``), so a number a consumer may have seen is never reused.

Writing every number would wear an SD card, so numbers are reserved in blocks of about
``RESERVE_AHEAD_S`` (an hour) of traffic, and when one topic needs a new block every topic that
has used half of its block gets its next one in the same transaction: one small synced write every
few minutes for the whole agent instead of one a topic a minute (docs/deployment.md, "SD card").
The price of a crash or power cut is a forward jump of at most one block per topic, announced by
``unclean_restart``; a number is never repeated. Two modes decide *when* a number is reserved:

- eager (no spool): when it is created, as any created message may be sent at once;
- when handed (with the spool, ``reserve_when_handed``): when the outbox hands it to the MQTT
  client. During a broker outage nothing is handed, so nothing is reserved ahead, and after a
  crash the numbers of the spooled messages continue without a gap (``trim`` gives back the
  unused part of a block once nothing has been handed for a commit interval).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from edge_agent.agent.messaging.spool_storage import Fault, classify, move_aside

log = logging.getLogger(__name__)

BLOCK_MIN = 32
# a block holds this long of a topic's traffic (rate over the last window): each synced commit
# costs ~25-35 kB of card writes by the kernel's count, so 15-min blocks (~36 commits/h at the
# reference plant) were ~25 MB/day; a crash costs a forward jump of at most one block per topic
RESERVE_AHEAD_S = 3600.0
MIN_WINDOW_S = 10.0  # a rate is measured over at least this long (the first block after start)
FIRST_RATE_PER_S = 1.0  # assumed for a topic's first block, before its rate is known
TRANSIENT_TOPICS = 256  # topics named by the network (answers to unknown command names), kept in memory
DB_ERRORS = (sqlite3.Error, OSError)


class SeqStore:
    """Hands out seq numbers per topic; ``close()`` makes the next run continue without a gap."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fault = ""  # why the file could not be used ("" = fine)
        self.on_fault: Callable[[str], None] | None = None  # told once when the file fails during the run
        self.was_clean = True
        self._reserved: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open(path)
        except DB_ERRORS as exc:
            if classify(exc) is Fault.CORRUPT:
                self._db = self._fresh(path, exc)
            else:
                self._fail(f"cannot use {path}: {exc}")
                self._reserved = _read_only(path)
        self._floor = dict(self._reserved)  # numbers the previous run may have sent
        self._last: dict[str, int] = dict(self._reserved)  # next = reserved + 1 in both cases
        self._handed: dict[str, int] = {}
        self._eager: set[str] | None = None  # None: every topic is reserved when created
        self._window: dict[str, tuple[float, int]] = {}  # topic -> (since, messages)
        self._transient: dict[str, int] = {}  # LRU of non-durable topics -> last number
        self._trimmed: set[str] = set()  # given back by trim(): not topped up until handed again

    def _open(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            # before WAL is first used: no shared-memory index file (-shm), whose mmapped pages every
            # commit dirtied (8-12 kB of card writes a commit by the kernel's count); one process only
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # rare writes; a lost reservation could repeat a number
            db.execute("CREATE TABLE IF NOT EXISTS seq (topic TEXT PRIMARY KEY, reserved INTEGER NOT NULL)")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key='clean'").fetchone()
            self.was_clean = row is None or row[0] == "1"
            self._reserved = dict(db.execute("SELECT topic, reserved FROM seq").fetchall())
            db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '0')")
        except BaseException:
            db.close()
            raise
        return db

    def _fresh(self, path: Path, exc: BaseException) -> sqlite3.Connection | None:
        """A corrupt file: moved aside (kept for a person), a new one started. Numbers start again
        at 1 (the old ones cannot be read), so ``fault`` says so and the run reports it."""
        try:
            aside = move_aside(path)
            db = self._open(path)
        except (*DB_ERRORS, OSError) as err:
            self._fail(f"corrupt {path} ({exc}) and no fresh file: {err}")
            return None
        self.fault = f"corrupt {path} ({exc}) quarantined as {aside.name}; numbers start again at 1"
        log.error("seq store: %s", self.fault)
        return db

    def _fail(self, why: str) -> None:
        self.fault = why
        log.error("seq store: %s; numbers are kept in memory only for this run", why)
        running = self._db is not None
        if self._db is not None:
            try:
                self._db.close()
            except DB_ERRORS:
                pass
        self._db = None
        if running and self.on_fault is not None:
            self.on_fault(why)

    def reserve_when_handed(self, eager: Iterable[str] = ()) -> None:
        """Reserve numbers when messages are handed to the client (``handed``), except for the
        ``eager`` topics (published outside the outbox: status, config state)."""
        self._eager = set(eager)

    def seed(self, spooled_max: Mapping[str, int]) -> None:
        """Continue above the numbers of messages still waiting in the spool."""
        for topic, seq in spooled_max.items():
            self._last[topic] = max(self._last.get(topic, 0), seq)

    def next(self, topic: str, *, durable: bool = True) -> int:
        """Return the next number for ``topic``, reserving a block on disk when needed.

        ``durable`` False (a topic named by the network, such as the answer to an unknown command
        name): numbered in a bounded in-memory table, never written, so one new name per message
        cannot grow the file or the memory; such numbers start again at 1 after a restart."""
        if not durable and topic not in self._last:
            return self._next_transient(topic)
        seq = self._last.get(topic, 0) + 1
        self._last[topic] = seq
        since, count = self._window.get(topic, (time.monotonic(), 0))
        self._window[topic] = (since, count + 1)
        if (self._eager is None or topic in self._eager) and seq > self._reserved.get(topic, 0):
            self._reserve(topic, seq)
        return seq

    def _next_transient(self, topic: str) -> int:
        seq = self._transient.pop(topic, 0) + 1
        self._transient[topic] = seq  # most recent last: the oldest goes first when full
        if len(self._transient) > TRANSIENT_TOPICS:
            del self._transient[next(iter(self._transient))]
        return seq

    def give_back(self, topic: str, seq: int) -> None:
        """``seq`` was never used (its message could not be built): the next message takes it."""
        if self._last.get(topic) == seq:
            self._last[topic] = seq - 1
        elif self._transient.get(topic) == seq:
            self._transient[topic] = seq - 1

    def handed(self, topic: str, seq: int) -> None:
        """``seq`` is about to be handed to the MQTT client: make sure it is reserved first."""
        if topic not in self._last:
            return  # a transient topic: never reserved
        if seq > self._handed.get(topic, 0):
            self._handed[topic] = seq
            self._trimmed.discard(topic)
        if seq > self._reserved.get(topic, 0):
            self._reserve(topic, seq)

    def trim(self) -> None:
        """Give back reserved numbers that were never handed (called when nothing was handed for
        a commit interval: an outage or an idle spell), so a crash during an outage leaves no gap."""
        if self._eager is None:
            return
        trimmed = {}
        for topic, reserved in self._reserved.items():
            if topic in self._eager:
                continue
            exact = max(self._floor.get(topic, 0), self._handed.get(topic, 0))
            if reserved > exact:
                trimmed[topic] = exact
        if trimmed:
            self._write(trimmed)
            self._reserved.update(trimmed)
            self._trimmed.update(trimmed)

    def _reserve(self, topic: str, seq: int) -> None:
        """Reserve a new block for ``topic`` (which reached ``seq``), and top up in the same write
        every other topic that has used half of its block."""
        now = time.monotonic()
        wanted = {topic: seq + self._block(topic, now)}
        for other, reserved in self._reserved.items():
            used = self._used(other)
            if other == topic or used is None:
                continue
            if reserved - used < self._block(other, now, reset=False) // 2:
                wanted[other] = used + self._block(other, now)
        self._reserved.update(wanted)
        self._write(wanted)

    def _used(self, topic: str) -> int | None:
        """The highest number of ``topic`` that counts as used in this mode (created when eager,
        handed to the client otherwise); None when the topic is transient, not used yet, or given
        back by ``trim`` (an outage: topping it up would leave a gap after a crash)."""
        if topic not in self._last or topic in self._trimmed:
            return None
        if self._eager is None or topic in self._eager:
            return self._last[topic]
        return self._handed.get(topic)

    def _block(self, topic: str, now: float, *, reset: bool = True) -> int:
        """About RESERVE_AHEAD_S of ``topic``'s traffic, at least BLOCK_MIN numbers; while the rate
        is not known yet (the first block of a topic), an hour at one message a second: a guess
        from a few messages in a few seconds (360 numbers from one) made every 1-Hz topic reserve
        again within minutes of the start, each a synced commit."""
        since, count = self._window.get(topic, (now, 0))
        if now - since < MIN_WINDOW_S:
            block = max(BLOCK_MIN, int(RESERVE_AHEAD_S * FIRST_RATE_PER_S))
        else:
            block = max(BLOCK_MIN, int(count / (now - since) * RESERVE_AHEAD_S))
        if reset:
            self._window[topic] = (now, 0)
        return block

    def _write(self, values: Mapping[str, int]) -> None:
        if self._db is None:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO seq VALUES (?, ?)", list(values.items()))
        except DB_ERRORS as exc:
            self._fail(f"cannot write {self.path}: {exc}")

    def close(self) -> None:
        """Write the exact last numbers and mark the stop clean."""
        if self._db is None:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO seq VALUES (?, ?)", list(self._last.items()))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '1')")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except DB_ERRORS as exc:
            log.error("seq store: cannot write the last numbers to %s: %s", self.path, exc)
        self._db.close()
        self._db = None


def _read_only(path: Path) -> dict[str, int]:
    """Best effort: the stored numbers of an unwritable file, so this run at least does not repeat them."""
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            return dict(db.execute("SELECT topic, reserved FROM seq").fetchall())
        finally:
            db.close()
    except DB_ERRORS:
        return {}
