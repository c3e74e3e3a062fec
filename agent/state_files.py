"""Opening the agent's SQLite state files so that a corrupt one can never keep the agent from
starting: it is moved aside (kept for a person to look at) and a fresh one is started.

Why: a state file is written by the agent, but a power cut, a full SD card or a person can leave
junk in it, and a store that raised at start made ``Restart=on-failure`` a crash loop that only
hand-editing ended (docs/security.md).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from edge_agent.agent.messaging.spool_storage import Fault, classify, move_aside

log = logging.getLogger("agent.state")

REPORTED_ELSEWHERE = ("spool.sqlite", "seq.sqlite")  # these report their own fault events


def connect(path: Path) -> sqlite3.Connection:
    """``sqlite3.connect`` for a state file, checked readable; a corrupt file is moved aside first,
    and a file that cannot be opened at all (read-only or full file system) is replaced by an
    in-memory database for this run: a store must never keep the agent from starting."""
    try:
        return _checked(path)
    except sqlite3.DatabaseError as exc:
        if classify(exc) is Fault.CORRUPT:
            aside = move_aside(path)
            log.error("%s is corrupt (%s): moved aside as %s, starting a fresh one", path, exc, aside.name)
            try:
                return _checked(path)
            except sqlite3.DatabaseError as again:
                exc = again
        log.error("cannot use %s (%s): kept in memory for this run", path, exc)
        return _checked(Path(":memory:"))


def _checked(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA schema_version").fetchone()  # reads the header: junk fails here
    except BaseException:
        db.close()
        raise
    return db


def recently_moved_aside(state_dir: Path, within_s: float = 60.0) -> list[str]:
    """Notes for state files moved aside during this start (for the ``state_quarantined`` event)."""
    now = time.time()
    notes = []
    for aside in sorted(Path(state_dir).glob("*.corrupt-*")):
        if aside.name.endswith(("-wal", "-shm")) or aside.name.startswith(REPORTED_ELSEWHERE):
            continue
        if now - aside.stat().st_ctime <= within_s:  # a rename sets ctime
            notes.append(f"{aside.name.split('.corrupt-')[0]} was corrupt: moved aside as {aside.name}")
    return notes
