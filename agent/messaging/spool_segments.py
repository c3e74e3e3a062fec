"""The spool's files: append-only segments, every message written once (docs/spool.md, "Storage").

The spool directory holds two logs, one per backlog (``d-*.seg`` data, ``e-*.seg`` events and
state), each a row of segment files named by the first message id they hold. A group commit
appends its messages as frames to the end of the newest segment of their log in one ``write()``,
and the acknowledgements since the last commit as one small frame (ids, delta-coded); nothing
written is ever rewritten. A segment is deleted once it and every older one of its log hold no
unacknowledged message (acknowledgements are always written to the newest segment, so they only
name messages of their own or an older segment: deleting from the front loses none). So an outage
writes each message once plus a few bytes of acknowledgement, where SQLite rewrote its last
page at every commit and copied every page again at a checkpoint (7-11x the messages' bytes).

A frame: ``<u32 body length, u32 CRC-32 of kind + body, u8 kind>`` then the body (MessagePack).
A frame that does not check out ends its file: the rest is cut off (kept aside as
``*.corrupt-STAMP`` unless it is only zeros, as a power cut leaves it) and reported.
"""

from __future__ import annotations

import bisect
import errno
import itertools
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

log = logging.getLogger("agent.spool")

FRAME = struct.Struct("<IIB")  # body length, CRC-32 of kind byte + body, kind
MSG, ACK = 1, 2
SEGMENT_BYTES = 1 << 20  # a new segment past this: drained segments are freed as the backlog drains
MAX_BODY = 64 << 20  # a longer length is a damaged header, not a message
PREFIXES = ("d", "e")  # log 0: data, log 1: events and state (Backlog values)

Row = tuple[int, str, int, int, int, int, bytes]  # id, topic, seq, prio, qos, retain, payload


class BadFrame(Exception):
    """A frame that does not check out at ``offset``."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"bad frame at byte {offset}")
        self.offset = offset


def log_of(prio: int) -> int:
    """The log of a message's priority class: data 0, events and state 1."""
    return 0 if prio == 0 else 1


def frame(kind: int, body: bytes) -> bytes:
    return FRAME.pack(len(body), zlib.crc32(body, kind), kind) + body


def msg_frame(row: Row) -> bytes:
    return frame(MSG, msgpack.packb(list(row), use_bin_type=True))


def ack_frame(ids: Iterable[int]) -> bytes:
    """Acknowledged ids, sorted and delta-coded (a drain acknowledges runs of ids: ~1 byte each)."""
    ordered = sorted(ids)
    deltas = [ordered[0], *(b - a for a, b in itertools.pairwise(ordered))]
    return frame(ACK, msgpack.packb(deltas))


def ack_ids(body: bytes) -> list[int]:
    out, total = [], 0
    for delta in msgpack.unpackb(body):
        total += int(delta)
        out.append(total)
    return out


def frames(buf: bytes | memoryview, start: int = 0) -> Iterator[tuple[int, int, int, memoryview]]:
    """(offset, end, kind, body) of each frame from ``start``; BadFrame where one does not check out."""
    view, offset, size = memoryview(buf), start, len(buf)
    while offset < size:
        if offset + FRAME.size > size:
            raise BadFrame(offset)
        length, crc, kind = FRAME.unpack_from(view, offset)
        end = offset + FRAME.size + length
        body = view[offset + FRAME.size : end]
        if kind not in (MSG, ACK) or length > MAX_BODY or end > size or zlib.crc32(body, kind) != crc:
            raise BadFrame(offset)
        yield offset, end, kind, body
        offset = end


def unpack_row(body: bytes | memoryview) -> Row:
    i, topic, seq, prio, qos, retain, payload = msgpack.unpackb(body, raw=False)
    return int(i), str(topic), int(seq), int(prio), int(qos), int(retain), bytes(payload)


@dataclass
class Segment:
    first: int  # id of its first message (its name)
    path: Path
    size: int = 0
    live: int = 0  # messages in it not acknowledged


@dataclass
class Scan:
    """What the files hold at start: the spool's counters."""

    count: int = 0
    bytes: int = 0  # payload + topic of the live messages
    max_id: int = 0
    spooled_max: dict[str, int] = field(default_factory=dict)  # topic -> highest seq waiting
    damaged: list[str] = field(default_factory=list)  # what was cut off, for a fault notice


class SegmentLog:
    """One backlog's row of segments."""

    def __init__(self, directory: Path, prefix: str) -> None:
        self.dir, self.prefix = directory, prefix
        self.segs: list[Segment] = []
        self.firsts: list[int] = []  # the segments' first ids, for bisect
        self.acked: set[int] = set()  # acknowledged ids of messages still in a segment
        self.fd: int | None = None  # the newest segment, opened for appending
        self.dirty = False  # written since the last sync
        self.cursor: tuple[int, int, int] = (-1, 0, 0)  # (last id paged, its segment's first id, offset after it)

    def name(self, first: int) -> Path:
        return self.dir / f"{self.prefix}-{first:016d}.seg"

    def paths(self) -> list[Path]:
        return sorted(self.dir.glob(f"{self.prefix}-*.seg"))

    def index_of(self, msg_id: int) -> int:
        """The index of the segment that holds ``msg_id`` (-1: none)."""
        return bisect.bisect_right(self.firsts, msg_id) - 1

    def add(self, seg: Segment) -> None:
        self.segs.append(seg)
        self.firsts.append(seg.first)

    def pop_front(self) -> Segment:
        self.firsts.pop(0)
        return self.segs.pop(0)


class SegmentStore:
    """The spool's two logs in one directory. Every method runs on the event loop's thread except
    ``sync`` (the background syncer), which only touches duplicated descriptors."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.logs = [SegmentLog(directory, p) for p in PREFIXES]
        self._lock = threading.Lock()  # the descriptors against the syncer's duplicates
        self._dir_dirty = False
        self.bytes_written = 0

    # --- start ---------------------------------------------------------------------------------
    def open(self) -> Scan:
        """Create the directory or read what it holds (cutting off damaged tails)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not os.access(self.dir, os.W_OK):  # a read-only file system: as any run that cannot write
            raise OSError(errno.EROFS, f"{self.dir} is not writable")
        scan = Scan()
        for lg in self.logs:
            self._scan_log(lg, scan)
        return scan

    def _scan_log(self, lg: SegmentLog, scan: Scan) -> None:
        """Two passes, one file in memory at a time: the acknowledgements, then the messages."""
        acked_all: set[int] = set()
        segs: list[Segment] = []
        for path in lg.paths():
            data = self._checked(path, path.read_bytes(), scan)
            segs.append(Segment(int(path.stem.split("-", 1)[1]), path, len(data)))
            for _o, _e, kind, body in frames(data):
                if kind == ACK:
                    acked_all.update(ack_ids(bytes(body)))
        for seg in segs:
            for _o, _e, kind, body in frames(seg.path.read_bytes()):
                if kind != MSG:
                    continue
                i, topic, seq, _p, _q, _r, payload = unpack_row(body)
                scan.max_id = max(scan.max_id, i)
                if i in acked_all:
                    lg.acked.add(i)
                    continue
                seg.live += 1
                scan.count += 1
                scan.bytes += len(payload) + len(topic)
                scan.spooled_max[topic] = max(scan.spooled_max.get(topic, 0), seq)
            lg.add(seg)
        self._free(lg)

    def _checked(self, path: Path, data: bytes, scan: Scan) -> bytes:
        """The valid frames of a segment; a damaged tail is cut off (and kept aside unless zeros)."""
        try:
            for _frame in frames(data):
                pass
            return data
        except BadFrame as bad:
            cut = bad.offset
        good, rest = data[:cut], data[cut:]
        if not _torn(rest):
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            aside.write_bytes(data)
            scan.damaged.append(f"{path.name}: {len(rest)} damaged byte(s) after byte {cut}, kept as {aside.name}")
        else:
            log.warning("spool %s: a torn last frame (%d bytes) cut off: a power cut during a write", path, len(rest))
        with open(path, "r+b") as f:
            f.truncate(len(good))
            os.fsync(f.fileno())
        return good

    # --- writing ---------------------------------------------------------------------------------
    def commit(self, rows: Iterable[Row], acked: Iterable[tuple[int, int]], *, sync: bool) -> None:
        """Append ``rows`` and the acknowledgements ``(id, log)`` since the last commit, one write
        per log; ``sync``: make them durable now (else the syncer does within its interval)."""
        per_log: list[list[Row]] = [[], []]
        for row in rows:
            per_log[log_of(row[3])].append(row)
        acks: list[list[int]] = [[], []]
        for msg_id, lg_index in acked:
            if self._acknowledge(self.logs[lg_index], msg_id):
                acks[lg_index].append(msg_id)
        for lg, new, done in zip(self.logs, per_log, acks, strict=True):
            if new or done:
                self._append(lg, new, done)
            self._free(lg)
        if sync:
            self.sync()

    def _acknowledge(self, lg: SegmentLog, msg_id: int) -> bool:
        index = lg.index_of(msg_id)
        if index < 0 or msg_id in lg.acked:
            return False
        lg.acked.add(msg_id)
        lg.segs[index].live -= 1
        return True

    def _append(self, lg: SegmentLog, rows: list[Row], acked: list[int]) -> None:
        if rows and (not lg.segs or lg.segs[-1].size >= SEGMENT_BYTES):
            self._new_segment(lg, rows[0][0])
        if not lg.segs:
            return  # acknowledgements of messages no segment holds: nothing to record
        data = b"".join(msg_frame(r) for r in rows) + (ack_frame(acked) if acked else b"")
        seg = lg.segs[-1]
        if lg.fd is None:
            lg.fd = os.open(seg.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        written = os.write(lg.fd, data)
        if written != len(data):  # a full disk part-way: never leave half a frame behind
            os.ftruncate(lg.fd, seg.size)
            raise OSError(28, f"short write to {seg.path} ({written} of {len(data)} bytes)")
        seg.size += len(data)
        seg.live += len(rows)
        lg.dirty = True
        self.bytes_written += len(data)

    def _new_segment(self, lg: SegmentLog, first: int) -> None:
        self._close_fd(lg)
        path = lg.name(first)
        lg.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        lg.add(Segment(first, path))
        self._dir_dirty = True

    def _free(self, lg: SegmentLog) -> None:
        """Delete the oldest segments with nothing unacknowledged in them (front first, see above)."""
        while lg.segs and lg.segs[0].live <= 0:
            seg = lg.pop_front()
            if not lg.segs:
                self._close_fd(lg)
            seg.path.unlink(missing_ok=True)
            upper = lg.segs[0].first if lg.segs else None
            lg.acked = {i for i in lg.acked if upper is not None and i >= upper}
            self._dir_dirty = True

    def _close_fd(self, lg: SegmentLog) -> None:
        with self._lock:
            if lg.fd is not None:
                os.close(lg.fd)
                lg.fd = None

    # --- reading ---------------------------------------------------------------------------------
    def page(self, lg_index: int, after_id: int, limit: int, prio: int | None = None) -> list[Row]:
        """Up to ``limit`` unacknowledged messages of a log with id > ``after_id`` (of ``prio``
        only, if given), in id order."""
        lg = self.logs[lg_index]
        out: list[Row] = []
        start, offset = self._resume(lg, after_id, prio)
        for seg in lg.segs[start:]:
            with open(seg.path, "rb") as f:
                f.seek(offset)
                data = f.read()
            base, offset = offset, 0
            for _o, end, kind, body in frames(data):
                if kind != MSG:
                    continue
                row = unpack_row(body)
                if row[0] <= after_id or row[0] in lg.acked or (prio is not None and row[3] != prio):
                    continue
                out.append(row)
                if len(out) >= limit:
                    if prio is None:
                        lg.cursor = (row[0], seg.first, base + end)
                    return out
        if prio is None and out:
            lg.cursor = (out[-1][0], lg.segs[-1].first, lg.segs[-1].size)
        return out

    @staticmethod
    def _resume(lg: SegmentLog, after_id: int, prio: int | None) -> tuple[int, int]:
        """(segment index, byte offset) to read from: where the last page ended when it goes on
        from there (a drain pages on and on), else the start of the segment holding ``after_id``."""
        last_id, seg_first, offset = lg.cursor
        if prio is None and last_id == after_id:
            index = bisect.bisect_left(lg.firsts, seg_first)
            if index < len(lg.firsts) and lg.firsts[index] == seg_first:
                return index, offset
        return max(0, lg.index_of(after_id)), 0

    # --- durability ------------------------------------------------------------------------------
    def sync(self) -> None:
        """fdatasync what was written since the last sync (and the directory after a segment
        came or went); from any thread: the loop may close a descriptor meanwhile, so duplicates."""
        with self._lock:
            fds = [os.dup(lg.fd) for lg in self.logs if lg.dirty and lg.fd is not None]
            for lg in self.logs:
                lg.dirty = False
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        try:
            for fd in fds:
                os.fdatasync(fd)
            if dir_dirty:
                dfd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        finally:
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        self.sync()
        for lg in self.logs:
            self._close_fd(lg)


def _torn(rest: bytes) -> bool:
    """True if what follows the last good frame is a write cut short (zeros, or one frame whose
    written bytes end before its length says), not damage in the middle of a file."""
    written = rest.rstrip(b"\0")
    if not written:
        return True
    if len(written) < FRAME.size:
        return True
    length, _crc, kind = FRAME.unpack_from(written)
    return kind in (MSG, ACK) and length <= MAX_BODY and len(written) < FRAME.size + length


def read_live(directory: Path) -> list[Row]:
    """Every unacknowledged message in a spool directory, in id order (read only: for tests and
    tools; a damaged tail ends its file's reading)."""
    rows: list[Row] = []
    for prefix in PREFIXES:
        acked: set[int] = set()
        msgs: list[Row] = []
        for path in sorted(directory.glob(f"{prefix}-*.seg")):
            try:
                for _o, _e, kind, body in frames(path.read_bytes()):
                    if kind == ACK:
                        acked.update(ack_ids(bytes(body)))
                    else:
                        msgs.append(unpack_row(body))
            except BadFrame:
                continue
            except FileNotFoundError:
                continue  # deleted while reading (a running agent)
        rows += [r for r in msgs if r[0] not in acked]
    return sorted(rows)
