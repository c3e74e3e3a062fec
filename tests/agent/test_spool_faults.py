"""Disk full (a small tmpfs), read-only directory (a read-only tmpfs) and corrupt spool files: a
clear fault, the spool goes on in memory, a corrupt file is moved aside and never deleted."""

from __future__ import annotations

import asyncio
import os
import subprocess
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
            b = box(small / "spool.sqlite", faults, commit_messages=10)
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
            b = box(ro / "spool.sqlite", faults)
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
            b = box(fs / "spool.sqlite", faults)
            for i in range(1, 4):
                b.put(msg(i, 8))
            await b.close()

        asyncio.run(fill())
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)

        async def reopen() -> None:
            b = box(fs / "spool.sqlite", faults)
            assert not b.on_disk()
            b.put(msg(4, 8))
            assert await drain(b) == [4]
            await b.close()

        asyncio.run(reopen())
        assert (fs / "spool.sqlite").exists(), "the backlog stays in the file for a run that can write"
    assert [k for k, _ in faults] == [Fault.READ_ONLY]


def _aside(d: Path) -> list[Path]:
    return sorted(d.glob("spool.sqlite.corrupt-*"))


def test_garbage_file_is_moved_aside_and_a_fresh_spool_used(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    faults: Faults = []

    async def go() -> None:
        b = box(path, faults)
        assert b.on_disk()
        b.put(msg(1, 8))
        assert await drain(b) == [1]
        await b.close()

    asyncio.run(go())
    (aside,) = _aside(tmp_path)
    assert aside.read_bytes() == b"this is not a database" * 100, "moved, never deleted"
    assert [k for k, _ in faults] == [Fault.CORRUPT] and aside.name in faults[0][1]


def test_damaged_pages_are_found_at_open_and_the_file_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    faults: Faults = []

    async def fill() -> None:
        b = box(path, faults)
        for i in range(1, 2001):
            b.put(msg(i, 100))
        await b.close()

    asyncio.run(fill())
    size = path.stat().st_size
    with open(path, "r+b") as f:  # scribble over the middle of the table
        f.seek(size // 2)
        f.write(os.urandom(8192))

    async def reopen() -> None:
        b = box(path, faults)
        assert b.on_disk() and b.depth() == 0
        await b.close()

    asyncio.run(reopen())
    assert len(_aside(tmp_path)) == 1 and [k for k, _ in faults] == [Fault.CORRUPT]


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
