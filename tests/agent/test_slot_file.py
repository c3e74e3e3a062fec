"""agent/slot_file.py: a document written in place in two slots survives a torn write and never
creates, renames or deletes a file once both slots exist (the SD card's metadata writes)."""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.agent.slot_file import HEADER, SlotFile


def test_newest_good_generation_is_read(tmp_path: Path) -> None:
    store = SlotFile(tmp_path / "doc.json")
    assert store.read() is None
    for i in range(5):
        store.write(f"doc {i}".encode())
    assert SlotFile(tmp_path / "doc.json").read() == b"doc 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json.0", "doc.json.1"]


def test_a_shorter_document_overwrites_a_longer_one_in_place(tmp_path: Path) -> None:
    store = SlotFile(tmp_path / "doc.json")
    store.write(b"x" * 5000)
    store.write(b"y" * 5000)
    inodes = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    store.write(b"short")
    store.write(b"shorter")
    assert SlotFile(tmp_path / "doc.json").read() == b"shorter"
    assert {p.name: p.stat().st_ino for p in tmp_path.iterdir()} == inodes, "no file created or replaced"


def test_a_torn_write_leaves_the_previous_document(tmp_path: Path) -> None:
    store = SlotFile(tmp_path / "doc.json")
    store.write(b"first, complete")
    store.write(b"second, complete")
    newest = tmp_path / "doc.json.0"  # generation 2 lives in slot 0
    raw = bytearray(newest.read_bytes())
    raw[HEADER.size + 3] ^= 0xFF  # a power cut tore the payload
    newest.write_bytes(bytes(raw))
    again = SlotFile(tmp_path / "doc.json")
    assert again.read() == b"first, complete"
    again.write(b"third")  # the next write goes over the torn slot, not over the good one
    assert SlotFile(tmp_path / "doc.json").read() == b"third"
    assert (tmp_path / "doc.json.1").read_bytes()[HEADER.size :].startswith(b"first, complete")


def test_junk_in_both_slots_reads_as_nothing(tmp_path: Path) -> None:
    for name in ("doc.json.0", "doc.json.1"):
        (tmp_path / name).write_bytes(os.urandom(40))
    assert SlotFile(tmp_path / "doc.json").read() is None


def test_a_file_of_an_earlier_version_is_read_then_removed(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_bytes(b"old")
    (tmp_path / "doc.json.bak").write_bytes(b"older")
    store = SlotFile(tmp_path / "doc.json")
    assert store.read() == b"old"
    store.write(b"new")
    assert not (tmp_path / "doc.json").exists() and not (tmp_path / "doc.json.bak").exists()
    assert SlotFile(tmp_path / "doc.json").read() == b"new"
