"""A small state document written in place: two slot files used in turn, each record carrying a
generation and a checksum, so that a write never creates, links, renames or deletes a file.

Why: on ext4 the usual atomic replace (temp file, fsync, rename, directory fsync) dirties an inode,
a bitmap and directory blocks on every change: about 16 kB of metadata beside 8 kB of data for the
alarm list, which changed 42 times an hour at the reference plant (docs/deployment.md, "SD-card
writes"). Overwriting the older of two slots keeps the last good document whatever a power cut
tears: a torn record fails its checksum and the other slot, one generation older, is read.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

log = logging.getLogger("agent.state")

MAGIC = b"EAS1"
HEADER = struct.Struct("<4sQII")  # magic, generation, payload length, crc32 of the payload
MAX_PAYLOAD = 64 * 1024 * 1024  # a length beyond this is junk, not a document


class SlotFile:
    """``read()`` the newest good document, ``write(data)`` the next one into the older slot.

    The slots are ``NAME.0`` and ``NAME.1`` beside ``path``; a document at ``path`` itself (written
    by an earlier version with a rename) is read when no slot holds one, and removed, with its
    ``.bak``, once the first slot is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.slots = (path.with_name(path.name + ".0"), path.with_name(path.name + ".1"))
        self.generation = 0
        self._legacy = False

    def read(self) -> bytes | None:
        """The payload of the newest slot whose checksum holds, else the legacy file, else None."""
        best: tuple[int, bytes] | None = None
        for slot in self.slots:
            record = _record(slot)
            if record is not None and (best is None or record[0] > best[0]):
                best = record
        if best is not None:
            self.generation = best[0]
            return best[1]
        for legacy in (self.path, self.path.with_name(self.path.name + ".bak")):
            try:
                data = legacy.read_bytes()
            except FileNotFoundError:
                continue
            self._legacy = True
            return data
        return None

    def write(self, data: bytes) -> None:
        """Overwrite the older slot with ``data`` as the next generation, synced (data only)."""
        generation = self.generation + 1
        record = HEADER.pack(MAGIC, generation, len(data), zlib.crc32(data)) + data
        fd = os.open(self.slots[generation % 2], os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, record, 0)  # in place: no truncation, the length in the header bounds it
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self.generation = generation
        if self._legacy:
            for legacy in (self.path, self.path.with_name(self.path.name + ".bak")):
                legacy.unlink(missing_ok=True)
            self._legacy = False


def _record(slot: Path) -> tuple[int, bytes] | None:
    """(generation, payload) of one slot, or None when it is missing, torn or not ours."""
    try:
        with open(slot, "rb") as f:
            head = f.read(HEADER.size)
            if len(head) < HEADER.size:
                return None
            magic, generation, length, crc = HEADER.unpack(head)
            if magic != MAGIC or length > MAX_PAYLOAD:
                return None
            payload = f.read(length)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("cannot read %s: %s", slot, exc)
        return None
    if len(payload) != length or zlib.crc32(payload) != crc:
        log.warning("%s: a torn or damaged record (generation %d): reading the other slot", slot, generation)
        return None
    return generation, payload
