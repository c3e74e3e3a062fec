"""Disk full (a small tmpfs), read-only directory (a read-only tmpfs) and corrupt spool files: a
clear fault, the spool goes on in memory, a corrupt file is moved aside and never deleted."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.config.schema import SpoolSection
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.messaging.outbox import Message, Priority
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.messaging.spool import Fault, SpoolOutbox
from edge_agent.agent.messaging.spool_segments import read_live
from support import AgentProcess, Subscriber, write_config

Faults = list[tuple[Fault, str]]


def _mount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True, capture_output=True)


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``path`` (root only); always unmounted."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount(path, options)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def msg(seq: int, size: int = 1000) -> Message:
    return Message("edge/t/data/x", seq.to_bytes(4, "big") * (size // 4), 1, False, Priority.DATA, seq)


def box(path: Path, faults: Faults, **kw: Any) -> SpoolOutbox:
    return SpoolOutbox(path, SpoolSection(**kw), on_fault=lambda k, why: faults.append((k, why)))


async def drain(b: SpoolOutbox) -> list[int]:
    out = []
    while b.depth():
        m = await asyncio.wait_for(b.get(), 5)
        b.ack(m)
        out.append(m.seq)
    return out


@pytest.mark.slow
def test_disk_full_falls_back_to_memory_and_keeps_every_message(tmp_path: Path) -> None:
    faults: Faults = []
    with tmpfs(tmp_path / "small", "size=256k") as small:

        async def go() -> None:
            b = box(small / "spool", faults, commit_messages=10)
            for i in range(1, 601):
                b.put(msg(i))  # 600 kB: the 256 kB file system fills up on the way
            b.tick()
            assert not b.on_disk()
            assert await drain(b) == list(range(1, 601)), "nothing lost, still in order"
            b.put(msg(601))
            assert await drain(b) == [601], "keeps running in memory"
            await b.close()

        asyncio.run(go())
    assert [k for k, _ in faults] == [Fault.DISK_FULL]
    assert "full" in faults[0][1]


@pytest.mark.slow
def test_read_only_directory_runs_in_memory(tmp_path: Path) -> None:
    faults: Faults = []
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:

        async def go() -> None:
            b = box(ro / "spool", faults)
            assert not b.on_disk()
            for i in range(1, 6):
                b.put(msg(i, 8))
            assert await drain(b) == [1, 2, 3, 4, 5]
            await b.close()

        asyncio.run(go())
        seqs = SeqStore(ro / "seq.sqlite")
        assert "cannot use" in seqs.fault and seqs.next("a") == 1
        seqs.close()
    assert [k for k, _ in faults] == [Fault.READ_ONLY]


@pytest.mark.slow
def test_existing_spool_on_a_file_system_turned_read_only(tmp_path: Path) -> None:
    faults: Faults = []
    with tmpfs(tmp_path / "fs", "size=1m") as fs:

        async def fill() -> None:
            b = box(fs / "spool", faults)
            for i in range(1, 4):
                b.put(msg(i, 8))
            await b.close()

        asyncio.run(fill())
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)

        async def reopen() -> None:
            b = box(fs / "spool", faults)
            assert not b.on_disk()
            b.put(msg(4, 8))
            assert await drain(b) == [4]
            await b.close()

        asyncio.run(reopen())
        assert len(read_live(fs / "spool")) == 3, "the backlog stays in the files for a run that can write"
    assert [k for k, _ in faults] == [Fault.READ_ONLY]


def _aside(d: Path, name: str = "spool.sqlite") -> list[Path]:
    return sorted(d.glob(f"{name}.corrupt-*"))


def test_a_garbage_spool_of_an_earlier_version_is_moved_aside_and_a_fresh_spool_used(tmp_path: Path) -> None:
    legacy = tmp_path / "spool.sqlite"
    legacy.write_bytes(b"this is not a database" * 100)
    faults: Faults = []

    async def go() -> None:
        b = box(tmp_path / "spool", faults)
        assert b.on_disk()
        b.put(msg(1, 8))
        assert await drain(b) == [1]
        await b.close()

    asyncio.run(go())
    (aside,) = _aside(tmp_path)
    assert aside.read_bytes() == b"this is not a database" * 100, "moved, never deleted"
    assert [k for k, _ in faults] == [Fault.CORRUPT] and aside.name in faults[0][1]


def test_the_backlog_of_an_earlier_versions_sqlite_spool_is_moved_in_and_delivered(tmp_path: Path) -> None:
    legacy = tmp_path / "spool.sqlite"
    db = sqlite3.connect(legacy)
    db.execute(
        "CREATE TABLE spool (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, seq INTEGER NOT NULL,"
        " prio INTEGER NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, payload BLOB NOT NULL)"
    )
    db.executemany("INSERT INTO spool VALUES (?, 'edge/t/data/x', ?, 0, 1, 0, ?)", [(i, i, b"p") for i in (7, 8, 9)])
    db.commit()
    db.close()
    seqs = SeqStore(tmp_path / "seq.sqlite")
    seqs.reserve_when_handed()
    faults: Faults = []

    async def go() -> None:
        b = SpoolOutbox(tmp_path / "spool", SpoolSection(), seqs=seqs, on_fault=lambda k, w: faults.append((k, w)))
        assert b.depth() == 3 and not legacy.exists()
        assert await drain(b) == [7, 8, 9]
        await b.close()

    asyncio.run(go())
    assert faults == [] and seqs.next("edge/t/data/x") == 10, "numbers continue above the moved backlog"


def _segment(d: Path) -> Path:
    (seg,) = sorted((d / "spool").glob("d-*.seg"))
    return seg


def _fill(d: Path, n: int, faults: Faults) -> None:
    async def fill() -> None:
        b = box(d / "spool", faults)
        for i in range(1, n + 1):
            b.put(msg(i, 100))
        await b.close()

    asyncio.run(fill())


def _reopened(d: Path, faults: Faults) -> list[int]:
    async def reopen() -> list[int]:
        b = box(d / "spool", faults)
        assert b.on_disk()
        got = await drain(b)
        await b.close()
        return got

    return asyncio.run(reopen())


def test_damaged_frames_are_cut_off_at_open_kept_aside_and_the_frames_before_delivered(tmp_path: Path) -> None:
    faults: Faults = []
    _fill(tmp_path, 2000, faults)
    seg = _segment(tmp_path)
    original = seg.read_bytes()
    with open(seg, "r+b") as f:  # scribble over the middle of the segment
        f.seek(len(original) // 2)
        f.write(os.urandom(8192))
    got = _reopened(tmp_path, faults)
    assert 0 < len(got) < 2000 and got == list(range(1, len(got) + 1)), "the frames before the damage, in order"
    (aside,) = _aside(seg.parent, seg.name)
    assert len(aside.read_bytes()) == len(original), "the damaged segment kept whole for a person"
    assert [k for k, _ in faults] == [Fault.CORRUPT] and aside.name in faults[0][1]


def test_a_torn_last_frame_is_cut_off_zeros_quietly(tmp_path: Path) -> None:
    """A power cut can leave half a frame (or zeros) at the end of the newest segment."""
    faults: Faults = []
    _fill(tmp_path, 10, faults)
    seg = _segment(tmp_path)
    data = seg.read_bytes()
    seg.write_bytes(data[: len(data) - 50] + b"\0" * 4096)  # the last frame torn, then zeros
    assert _reopened(tmp_path, faults) == list(range(1, 10)) and faults == []
    assert _aside(seg.parent, seg.name) == []


_SPOOLER = """
import asyncio, sys
from pathlib import Path
from edge_agent.agent.config.schema import SpoolSection
from edge_agent.agent.messaging.outbox import Message, Priority
from edge_agent.agent.messaging.spool import SpoolOutbox

async def main() -> None:
    box = SpoolOutbox(Path(sys.argv[1]), SpoolSection(commit_messages=400, synchronous="NORMAL"))
    seq = int(sys.argv[2])
    while True:
        for _ in range(400):  # one batch: one write() of ~420 kB per commit
            seq += 1
            box.put(Message("edge/t/data/x", seq.to_bytes(4, "big") * 256, 1, False, Priority.DATA, seq))
        print(seq, flush=True)  # committed: commit_messages wait, so put() wrote them
        await asyncio.sleep(0)

asyncio.run(main())
"""


@pytest.mark.slow  # subprocesses
def test_sigkill_in_the_middle_of_batches_keeps_every_committed_message_once_in_order(tmp_path: Path) -> None:
    """SIGKILL while the spool appends large batches (the kill lands inside or between write()s):
    every batch reported committed is there after a restart, once and in order, and the files
    read back clean (no torn frame: nothing is cut off, no fault)."""
    rng = random.Random(29)
    spool_dir, last = tmp_path / "spool", 0
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SPOOLER, str(spool_dir), str(last)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None
            committed = [int(proc.stdout.readline()) for _ in range(rng.randint(2, 6))][-1]
            time.sleep(rng.random() * 0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        seqs = [r[2] for r in read_live(spool_dir)]
        assert seqs == list(range(1, len(seqs) + 1)), "in order, no duplicate, no hole"
        assert len(seqs) >= committed
        last = seqs[-1]
    faults: Faults = []
    got = _reopened(tmp_path, faults)
    assert got == list(range(1, last + 1)) and faults == []
    assert not list(spool_dir.glob("*.seg")), "a drained spool leaves no segment behind"


@pytest.mark.slow
def test_agent_with_a_read_only_state_dir_and_a_corrupt_spool_keeps_publishing(tmp_path: Path) -> None:
    instances = '[[instances]]\nname = "v"\nplugin = "values"\ninterval_s = 0.1\n'
    instances += 'driver = { type = "sim", profile = "ramp" }\noptions = { heartbeat_s = 0 }\n'
    corrupt_state = tmp_path / "state"
    corrupt_state.mkdir()
    (corrupt_state / "spool.sqlite").write_bytes(b"garbage" * 1000)
    broker = LocalBroker().start()
    sub = Subscriber(broker.url)
    try:
        with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
            for agent_id, state in (("ro", ro), ("bad", corrupt_state)):
                cfg = write_config(
                    tmp_path / f"{agent_id}.toml", state_dir=state, instances=instances, agent_id=agent_id
                )
                agent = AgentProcess(cfg, broker.url)
                try:
                    sub.wait_for(lambda a=agent_id: len(sub.on(f"edge/{a}/data/v")) >= 5, 20, f"{agent_id} data")
                    events = sub.wait_for(lambda a=agent_id: sub.on(f"edge/{a}/event/agent"), 10, "fault event")
                    kinds = {e.env["d"]["kind"]: e.env["d"] for e in events}
                    assert kinds["spool_fault"]["fault"] == ("read_only" if state == ro else "corrupt")
                    assert agent.stop() == 0, agent.log()
                finally:
                    agent.kill()
                time.sleep(0.1)
    finally:
        sub.close()
        broker.close()
    assert len(_aside(corrupt_state)) == 1
