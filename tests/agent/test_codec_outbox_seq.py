"""Codec round trip, outbox drop policy, seq persistence across clean and unclean stops."""

from __future__ import annotations

import asyncio
import math
import struct
from pathlib import Path

import msgpack
import numpy as np
import pytest
from edge_agent.agent.errors import CodecError
from edge_agent.agent.messaging import codec, seq_store
from edge_agent.agent.messaging.outbox import MemoryOutbox, Message, Priority
from edge_agent.agent.messaging.seq_store import BLOCK_MIN, SeqStore


def test_codec_round_trip_and_compact_floats() -> None:
    payload = codec.encode(
        {"t": 21.5, "n": np.int64(3), "ok": True, "x": {"rms": np.float32(0.25)}},
        ts_ms=1_700_000_000_000,
        seq=7,
        quality={"t": "stale"},
    )
    env = codec.decode(payload)
    assert env == {
        "v": 1,
        "ts": 1_700_000_000_000,
        "seq": 7,
        "d": {"t": 21.5, "n": 3, "ok": True, "x": {"rms": 0.25}},
        "q": {"t": "stale"},
    }
    assert len(codec.encode({"a": 1.1}, ts_ms=0, seq=0, narrow={"a"})) < len(codec.encode({"a": 1.1}, ts_ms=0, seq=0))


def test_codec_is_lossless_unless_a_value_is_declared_float32() -> None:
    d = {"pi": math.pi, "e": {"kwh": 1234567 * 0.001, "v": 1.84}, "big": 2**64 - 1, "half": 0.5, "arr": [0.1, 2.5]}
    payload = codec.encode(d, ts_ms=0, seq=0, narrow={"e.v"})
    got = codec.decode(payload)["d"]
    assert got["pi"] == math.pi and got["e"]["kwh"] == 1234.567 and got["big"] == 2**64 - 1
    assert got["arr"] == [0.1, 2.5] and got["half"] == 0.5
    assert got["e"]["v"] == struct.unpack(">f", struct.pack(">f", 1.84))[0]  # declared float32: a single
    assert payload.count(b"\xcb") == 3  # doubles: pi, kwh, 0.1; 0.5 and 2.5 fit a single exactly
    assert codec.to_jsonable(got)["e"]["v"] == 1.84  # tail prints the single's shortest form
    assert codec.to_jsonable(got)["pi"] == math.pi
    import numpy as np

    assert codec.decode(codec.encode({"f": np.float32(1.84), "g": np.float64(math.pi)}, ts_ms=0, seq=0))["d"] == {
        "f": float(np.float32(1.84)),
        "g": math.pi,
    }


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"v": 1}), msgpack.packb({"v": 9, "ts": 0, "seq": 0, "d": {}})],
)
def test_decode_rejects_bad_payloads(payload: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode(payload)


def _msg(prio: Priority, n: int) -> Message:
    return Message("t", str(n).encode(), 1, False, prio, n)


def test_outbox_drops_oldest_data_first_and_counts() -> None:
    async def go() -> None:
        box = MemoryOutbox(3)
        box.put(_msg(Priority.EVENT, 1))
        box.put(_msg(Priority.DATA, 2))
        box.put(_msg(Priority.DATA, 3))
        box.put(_msg(Priority.DATA, 4))  # drops data 2
        box.put(_msg(Priority.EVENT, 5))  # drops data 3
        assert box.dropped() == {"data": 2, "event": 0, "state": 0}
        got = [(await box.get()).seq for _ in range(3)]
        assert got == [1, 4, 5]
        box2 = MemoryOutbox(2)
        box2.put(_msg(Priority.EVENT, 1))
        box2.put(_msg(Priority.EVENT, 2))
        box2.put(_msg(Priority.DATA, 3))  # nothing less important to drop: the newcomer is dropped
        box2.put(_msg(Priority.EVENT, 4))  # drops event 1
        assert box2.dropped() == {"data": 1, "event": 1, "state": 0}

    asyncio.run(go())


def test_seq_clean_restart_continues_and_crash_never_repeats(tmp_path: Path) -> None:
    s = SeqStore(tmp_path / "seq.sqlite")
    assert [s.next("a") for _ in range(5)] == [1, 2, 3, 4, 5]
    s.close()
    s = SeqStore(tmp_path / "seq.sqlite")
    assert s.was_clean and s.next("a") == 6
    for _ in range(3):
        s.next("a")  # last used: 9
    s._db.close()  # simulate a crash: no clean close
    s = SeqStore(tmp_path / "seq.sqlite")
    assert not s.was_clean
    nxt = s.next("a")
    block = max(BLOCK_MIN, int(seq_store.FIRST_RATE_PER_S * seq_store.RESERVE_AHEAD_S))  # rate not known yet
    assert 9 < nxt <= 6 + block + 1, "after a crash seq skips the reserved block, never repeats"
    s.close()


def test_memory_outbox_reports_drops() -> None:
    reports: list[tuple[dict[str, int], dict[str, int]]] = []
    box = MemoryOutbox(2, on_drop=lambda since, total: reports.append((since, total)))
    for n in range(5):
        box.put(_msg(Priority.DATA, n))
    assert reports == [({"data": 1, "event": 0, "state": 0}, {"data": 1, "event": 0, "state": 0})]
    assert box.dropped()["data"] == 3, "counted exactly, reported at most every 10 s"


def test_seq_store_failing_during_the_run_says_so_once_and_goes_on_in_memory(tmp_path: Path) -> None:
    store = SeqStore(tmp_path / "seq.sqlite")
    faults: list[str] = []
    store.on_fault = faults.append
    first = [store.next("a") for _ in range(3)]
    assert store._db is not None
    store._db.close()  # the file becomes unusable (disk gone, I/O error...)
    later = [store.next("a") for _ in range(4000)]  # beyond the reserved block: a write is attempted
    assert first + later == list(range(1, 4004))  # no number repeated or skipped in this run
    assert len(faults) == 1 and "seq.sqlite" in faults[0]
    assert store.fault == faults[0]
    store.close()  # nothing to write any more: no error


class _Clock:
    """time.monotonic for the seq store, advanced by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_seq_reservations_are_rare_and_batched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 topics at 1 msg/s for two hours: a first block each (an hour at 1 msg/s), then the
    # top-ups ride together (it was one write per topic per minute: 2,400 an hour), and a crash
    # still never repeats a number.
    clock = _Clock()
    monkeypatch.setattr(seq_store, "time", clock)
    s = SeqStore(tmp_path / "seq.sqlite")
    writes: list[int] = []
    real_write = s._write
    monkeypatch.setattr(s, "_write", lambda values: (writes.append(len(values)), real_write(values)))
    topics = [f"edge/a/data/i{n}" for n in range(40)]
    for _ in range(7200):
        clock.now += 1.0
        for t in topics:
            s.next(t)
    assert len(writes) <= 40 + 6, writes  # a first block each, then a few batched top-ups
    assert max(writes) > 1, "top-ups of the other topics ride along in one transaction"
    last = {t: s._last[t] for t in topics}
    assert s._db is not None
    s._db.close()  # a crash
    s = SeqStore(tmp_path / "seq.sqlite")
    for t in topics:
        nxt = s.next(t)
        assert last[t] < nxt <= last[t] + 1 + seq_store.RESERVE_AHEAD_S * 1.1, (t, last[t], nxt)
    s.close()
