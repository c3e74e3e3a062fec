"""The alarm list and the audit trail of one agent: outputs of the publisher, with commands.

``AlarmList`` follows the events that raise and clear alarms (agent/alarms/model.py), keeps every
alarm not yet normal in ``alarms.json.0``/``.1`` in the state dir (agent/slot_file.py: written in
place on each change, no file created or renamed, since the SD card pays for each) and publishes
the list retained on ``{p}/{agent}/alarms``. Commands: ``alarms`` (the list and the recent
history), ``ack``, ``shelve``, ``unshelve``.

``AuditLog`` keeps every ``audit`` event (agent/remote/authority.py ``record_action``: who, when,
what, from where, outcome) in ``audit.sqlite``, publishes the latest entries retained on
``{p}/{agent}/audit`` and answers ``audit``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.agent import state_files
from edge_agent.agent.alarms.model import AlarmRecord, AlarmState, Change, alarm_change
from edge_agent.agent.clock import now_ms
from edge_agent.agent.slot_file import SlotFile

log = logging.getLogger("agent.alarms")

RECENT_MAX = 200  # alarms that returned to normal, newest last (in memory and in alarms.json)
SHELVE_MAX_S = 7 * 86400  # a shelved alarm comes back within a week at the latest
SHELVE_DEFAULT_S = 8 * 3600  # one shift
AUDIT_RETAINED = 20  # entries in the retained audit message
AUDIT_KEEP = 100_000  # rows in audit.sqlite (oldest go first)
MAX_COMMENT = 300

Publish = Callable[[str, dict[str, Any]], None]  # (topic suffix, retained map)


def _person(args: Mapping[str, Any], what: str) -> str:
    """``by``: a person must say who they are to change an alarm's state."""
    by = args.get("by")
    if not isinstance(by, str) or not by.strip():
        raise ValueError(f'{what} needs "by": who does it (the CLI and the panel pass the logged-in user)')
    return by.strip()[:64]


def _comment(args: Mapping[str, Any]) -> str:
    c = args.get("comment", "")
    return c.strip()[:MAX_COMMENT] if isinstance(c, str) else ""


REEVALUATE_DATA = 30  # data messages of a restarted instance (its N-of-M filters need a few windows)


def _stateless(a: AlarmRecord) -> bool:
    """An alarm its plugin does not remember across restarts (bearing tones, machine diagnoses);
    limit alarms (``level``) persist in the plugin's state store and clear themselves."""
    kind, fields = a.raised_by.get("kind"), a.raised_by.get("fields") or {}
    return kind == "machine_fault" or "tone" in fields


class AlarmList:
    """Every alarm not normal, by id; persisted and published on each change."""

    COMMANDS = ("alarms", "ack", "shelve", "unshelve")

    def __init__(self, state_dir: Path, publish: Publish, clock: Callable[[], int] = now_ms) -> None:
        self.path = state_dir / "alarms.json"
        self.store = SlotFile(self.path)
        self.publish = publish
        self.clock = clock
        self.alarms: dict[str, AlarmRecord] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_MAX)
        self.replay_to: list[Any] = []  # outputs told of active alarms when their instance starts (Sparkplug)
        self._task: asyncio.Task[None] | None = None
        # Alarms whose plugin keeps no memory of them (bearing tones, machine diagnoses): after a
        # restart they must be raised again within REEVALUATE_DATA messages of their instance, or
        # they are cleared as no longer active (id -> data messages seen since the start).
        self._unconfirmed: dict[str, int] = {}
        self._load()

    # -- persistence -------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            raw = self.store.read()
            if raw is None:
                return
            data = json.loads(raw.decode("utf-8"))
            self.alarms = {a["id"]: AlarmRecord.from_wire(a) for a in data.get("alarms", [])}
            self.recent.extend(data.get("recent", []))
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a broken file must not stop the agent
            log.error("alarms: cannot read %s (%s): starting with an empty list", self.path, exc)

    def _changed(self) -> None:
        """Write the file and publish the list (both small; alarms change rarely)."""
        now = self.clock()
        doc = {"alarms": [a.to_wire(now) for a in self.alarms.values()], "recent": list(self.recent)}
        try:
            self.store.write(json.dumps(doc).encode())
        except OSError as exc:
            log.error("alarms: cannot write %s: %s", self.path, exc)
        self.publish("alarms", self.summary())

    def summary(self) -> dict[str, Any]:
        """The retained message: every alarm on the list and the counts per state."""
        now = self.clock()
        items = sorted(self.alarms.values(), key=lambda a: (not a.active, a.acked, -a.raised_ms))
        counts = {str(s): 0 for s in AlarmState if s is not AlarmState.NORMAL}
        for a in items:
            counts[str(a.state)] += 1
        counts["shelved"] = sum(a.shelved(now) for a in items)
        return {"alarms": [a.to_wire(now) for a in items], "counts": counts}

    # -- the publisher's output interface ------------------------------------------------------------
    def event(self, instance: str, kind: str, message: str, severity: str, fields: Mapping[str, Any]) -> None:
        if kind == "clock_step" and instance == "agent":
            self._clock_step(float(fields["step_s"]))
            return
        change = alarm_change(instance, kind, str(severity), message, fields)
        if change is not None and self.apply(change):
            self._changed()

    def data(self, instance: str, values: Mapping[str, Any], quality: Mapping[str, str] | None, ts_ms: Any) -> None:
        """All-good data from an instance clears its instance-wide faults (a restarted instance does
        not say ``sensor_ok`` for a fault it never saw), and re-evaluates its unconfirmed alarms."""
        if self._unconfirmed:
            self._reevaluate(instance)
        if quality:
            return
        stale = [
            a for a in self.alarms.values()
            if a.active and a.instance == instance and a.id.endswith("_fault") and a.id.count("/") == 1
        ]  # fmt: skip
        for a in stale:
            self.apply(Change(a.id, instance, a.name, False, "info", "readings are good again"))
        if stale:
            self._changed()

    def _reevaluate(self, instance: str) -> None:
        """Count a data message against the instance's unconfirmed alarms; clear the expired ones."""
        expired = []
        for aid in [a for a in self._unconfirmed if self.alarms.get(a) and self.alarms[a].instance == instance]:
            self._unconfirmed[aid] += 1
            if self._unconfirmed[aid] >= REEVALUATE_DATA:
                expired.append(aid)
        for aid in expired:
            del self._unconfirmed[aid]
            a = self.alarms[aid]
            why = f"not raised again within {REEVALUATE_DATA} messages after the restart: cleared on re-evaluation"
            self.apply(Change(aid, instance, a.name, False, "info", why))
            a.message = why  # the list says why it cleared with no clear from the plugin
        if expired:
            self._changed()

    def apply(self, c: Change) -> bool:
        """One raise or clear; True when the list changed. A raise of an active alarm is no new alarm."""
        now = self.clock()
        self._unconfirmed.pop(c.id, None)  # raised again (confirmed) or cleared: re-evaluated
        a = self.alarms.get(c.id)
        if c.active:
            if a is None:
                self.alarms[c.id] = AlarmRecord(
                    c.id, c.instance, c.name, c.severity, True, False, now, c.message, dict(c.details),
                    raised_by=dict(c.raised_by),
                )  # fmt: skip
                return True
            if a.active:
                a.details, a.message = dict(c.details) or a.details, c.message or a.message
                return False
            a.active, a.acked, a.raises, a.raised_ms, a.cleared_ms = True, False, a.raises + 1, now, None
            a.severity, a.message, a.details = c.severity, c.message, dict(c.details) or a.details
            a.raised_by = dict(c.raised_by) or a.raised_by
            return True
        if a is None or not a.active:
            return False
        a.active, a.cleared_ms = False, now
        self._normal_if_done(a)
        return True

    def _normal_if_done(self, a: AlarmRecord) -> None:
        if a.state is AlarmState.NORMAL:
            del self.alarms[a.id]
            self.recent.append(a.to_wire(self.clock()))

    # -- other outputs see the alarms still active after a restart -----------------------------------
    def instance_started(self, name: str, specs: Any) -> None:
        """Replay the instance's active alarms to the other outputs (Sparkplug's ``Alarms/...``
        metrics): after an agent restart its plugin does not raise them again, they are still active.
        Alarms the plugin keeps no memory of are re-evaluated: raised again soon, or cleared."""
        for a in self.alarms.values():
            if a.active and a.instance == name and _stateless(a):
                self._unconfirmed.setdefault(a.id, 0)
        for a in self.alarms.values():
            if a.active and a.instance == name and a.raised_by:
                for out in self.replay_to:
                    try:
                        out.event(name, str(a.raised_by["kind"]), a.message, a.severity, a.raised_by["fields"])
                    except Exception:  # another output's bug must not stop an instance's start
                        log.exception("alarms: replay to %s failed", type(out).__name__)

    def instance_stopped(self, name: str) -> None:
        """Nothing to do: the alarms stay on the list."""

    # -- commands -----------------------------------------------------------------------------------
    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        if name == "alarms":
            return {**self.summary(), "recent": list(self.recent)[-50:]}
        if name == "ack":
            return self.ack(args)
        if name == "shelve":
            return self.shelve(args)
        return self.unshelve(args)

    def _targets(self, args: Mapping[str, Any]) -> list[AlarmRecord]:
        ids = args.get("ids", args.get("id"))
        if ids == "all":
            return list(self.alarms.values())
        ids = [ids] if isinstance(ids, str) else ids
        if not isinstance(ids, list) or not ids:
            raise ValueError('name the alarm: {"id": ID} or {"ids": [...]} or {"id": "all"} (ids from cmd/alarms)')
        unknown = [i for i in ids if i not in self.alarms]
        if unknown:
            raise ValueError(f"no such alarm on the list: {', '.join(map(str, unknown))[:200]}")
        return [self.alarms[i] for i in ids]

    def ack(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Acknowledge: active ones become active_ack, cleared ones normal (off the list)."""
        by, comment = _person(args, "ack"), _comment(args)
        done = []
        for a in self._targets(args):
            if a.acked:
                continue
            a.acked, a.ack_by, a.ack_ms, a.ack_comment = True, by, self.clock(), comment
            done.append(a.id)
            self._normal_if_done(a)
        if done:
            self._changed()
        return {"acknowledged": done}

    def shelve(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Hide a known nuisance alarm until the expiry (``for_s``, default one shift, at most a week)."""
        by, comment = _person(args, "shelve"), _comment(args)
        for_s = args.get("for_s", SHELVE_DEFAULT_S)
        if isinstance(for_s, bool) or not isinstance(for_s, (int, float)) or not 0 < for_s <= SHELVE_MAX_S:
            raise ValueError(f"for_s: seconds to shelve, 1..{SHELVE_MAX_S} (got {for_s!r})")
        if not comment:
            raise ValueError('shelve needs a "comment": why this alarm is a nuisance (kept in the audit trail)')
        until = self.clock() + int(for_s * 1000)
        targets = self._targets(args)
        for a in targets:
            a.shelved_until_ms, a.shelved_by, a.shelve_comment = until, by, comment
        self._changed()
        return {"shelved": [a.id for a in targets], "until_ms": until}

    def _clock_step(self, step_s: float) -> None:
        """A shelve lasts what it was given (issue 29): its expiry moves with a step of the wall
        clock, or a step forward by days would end every shelve at once and a step back stretch it."""
        shelved = [a for a in self.alarms.values() if a.shelved_until_ms is not None]
        for a in shelved:
            a.shelved_until_ms = int(a.shelved_until_ms or 0) + round(step_s * 1000)
        if shelved:
            self._changed()

    def unshelve(self, args: Mapping[str, Any]) -> dict[str, Any]:
        _person(args, "unshelve")
        targets = self._targets(args)
        for a in targets:
            a.shelved_until_ms = None
        self._changed()
        return {"unshelved": [a.id for a in targets]}

    # -- life cycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        self.publish("alarms", self.summary())  # retained: a panel or SCADA sees the list at once
        self._task = asyncio.get_running_loop().create_task(self._expiry(), name="alarm-shelving")

    async def _expiry(self) -> None:
        """Shelving ends on time: republish when a shelve expires."""
        while True:
            await asyncio.sleep(10.0)
            now = self.clock()
            expired = [a for a in self.alarms.values() if a.shelved_until_ms is not None and a.shelved_until_ms <= now]
            for a in expired:
                a.shelved_until_ms = None
            if expired:
                self._changed()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class AuditLog:
    """Every recorded action, newest last; the latest retained, all of them asked with ``audit``."""

    COMMANDS = ("audit",)

    def __init__(self, state_dir: Path, publish: Publish) -> None:
        self.publish = publish
        self._lock = threading.Lock()
        self.db = state_files.connect(state_dir / "audit.sqlite")  # a corrupt file is moved aside
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, d TEXT NOT NULL)"
        )

    def event(self, instance: str, kind: str, message: str, severity: str, fields: Mapping[str, Any]) -> None:
        """The ``audit`` events of record_action: one row each (actions are rare, written at once)."""
        if kind != "audit":
            return
        entry = {"ts_ms": now_ms(), "msg": message, **fields}
        try:
            with self._lock:
                self.db.execute(
                    "INSERT INTO audit(ts_ms, d) VALUES (?, ?)", (entry["ts_ms"], json.dumps(entry, default=str))
                )
                self.db.execute("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (AUDIT_KEEP,))
        except sqlite3.Error as exc:  # the journal line of record_action still has it
            log.error("audit: cannot store an entry: %s", exc)
            return
        self.publish("audit", {"entries": self.entries(limit=AUDIT_RETAINED)})

    def data(self, instance: str, values: Mapping[str, Any], quality: Any, ts_ms: Any) -> None:
        """Data is not audited."""

    def entries(self, since_ms: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        """Entries newer than ``since_ms``, newest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT d FROM audit WHERE ts_ms >= ? ORDER BY id DESC LIMIT ?", (since_ms, limit)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    async def command(self, name: str, args: Mapping[str, Any]) -> Any:
        """``audit`` {since_ms | since_s (seconds back), limit (<= 1000)}."""
        since = args.get("since_ms")
        if since is None and isinstance(args.get("since_s"), (int, float)):
            since = now_ms() - int(args["since_s"] * 1000)
        limit = args.get("limit", 200)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ValueError("limit: 1..1000 entries")
        if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float))):
            raise ValueError("since_ms: ms since the epoch")
        return {"entries": self.entries(int(since or 0), limit)}

    async def start(self) -> None:
        self.publish("audit", {"entries": self.entries(limit=AUDIT_RETAINED)})

    async def close(self) -> None:
        with self._lock:
            self.db.close()
