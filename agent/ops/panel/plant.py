"""What the panel knows of the plant: the latest of every agent's retained topics and data, kept
from one MQTT subscription (its own broker user), and commands sent to an agent and answered.

The paho network thread only puts messages into this object under a lock; web requests read
copies. ``changed`` wakes the live-update streams (at most one update a second per stream).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

import msgpack
from edge_agent.agent.config.declared_values import flatten
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientSettings, Connection
from edge_agent.agent.ops.panel.security import known_zone

EVENTS_KEPT = 100
# what the calibration page lists of each channel's retained record (the rest comes with action=show)
CALIBRATION_FIELDS = (
    "instance",
    "channel",
    "unit",
    "ts_ms",
    "by",
    "as_found_error",
    "as_left_error",
    "next_due_ms",
    "cleared",
)


def _agent_view() -> dict[str, Any]:
    return {
        "status": {}, "state": {}, "alarms": {"alarms": [], "counts": {}}, "audit": {"entries": []},
        "values": {}, "quality": {}, "ts": {}, "reports": {}, "calibrations": {}, "events": deque(maxlen=EVENTS_KEPT),
    }  # fmt: skip


class Plant:
    """The agents seen on the broker (or only ``agents``), updated from MQTT."""

    def __init__(self, settings: ClientSettings, agents: list[str], time_zone: str = "UTC") -> None:
        self.settings = settings
        self.time_zone = time_zone  # the plant's, until an agent's shift report names its own
        self.only = set(agents)
        self.agents: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.version = 0
        self.dirty: dict[tuple[str, str], int] = {}  # (agent, what) -> version it changed at
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.conn: Connection | None = None
        self._thread: threading.Thread | None = None

    # -- the subscription --------------------------------------------------------------------------
    def topics(self) -> list[str]:
        p = self.settings.prefix
        who = sorted(self.only) or ["+"]
        out = []
        for a in who:
            out += [f"{p}/{a}/status", f"{p}/{a}/config/state", f"{p}/{a}/data/+", f"{p}/{a}/event/+"]
            out += [f"{p}/{a}/alarms", f"{p}/{a}/audit", f"{p}/{a}/report/+", f"{p}/{a}/cmd/+/result"]
            out += [f"{p}/{a}/calibration/+/+"]
        return out

    def start(self) -> None:
        self.conn = Connection(self.settings, self.topics(), name="edge-panel", timeout_s=15).__enter__()
        self._thread = threading.Thread(target=self._pump, name="panel-mqtt", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.conn is not None
        while True:
            msg = self.conn.get(3600)
            if msg is not None:
                try:
                    self.take(msg[0], msg[1])
                except Exception:  # one bad message must not stop the panel's view
                    continue

    def take(self, topic: str, payload: bytes) -> None:
        """One message from the broker into the view."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != self.settings.prefix:
            return
        agent, what = parts[1], parts[2:]
        if self.only and agent not in self.only:
            return
        env = codec.decode(payload)
        d = env.get("d")
        if not isinstance(d, dict):
            return
        if what[0] == "cmd":
            self._answer(d)
            return
        with self.changed:
            view = self.agents.setdefault(agent, _agent_view())
            key = self._store(view, what, env, d)
            if key:
                self.version += 1
                self.dirty[(agent, key)] = self.version
                self.changed.notify_all()

    @staticmethod
    def _store(view: dict[str, Any], what: list[str], env: Mapping[str, Any], d: dict[str, Any]) -> str:
        head = what[0]
        if head in ("status", "alarms", "audit") and len(what) == 1:
            view[head] = d
            return head
        if what == ["config", "state"]:
            view["state"] = d
            return "state"
        if head == "report" and len(what) == 2:
            view["reports"][what[1]] = d
            return "reports"
        if head == "calibration" and len(what) == 3:
            view["calibrations"][f"{what[1]}/{what[2]}"] = {k: d.get(k) for k in CALIBRATION_FIELDS}
            return "calibration"
        if head == "data" and len(what) == 2:
            inst = what[1]
            view["values"].setdefault(inst, {}).update(flatten(d))
            q = view["quality"].setdefault(inst, {})
            for k in flatten(d):
                q.pop(k, None)
            q.update(env.get("q") or {})
            view["ts"][inst] = env.get("ts")
            return f"data/{inst}"
        if head == "event" and len(what) == 2:
            view["events"].appendleft({"instance": what[1], "ts": env.get("ts"), **d})
            return "events"
        return ""

    # -- commands -----------------------------------------------------------------------------------
    def ask(self, agent: str, name: str, req: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any] | None:
        """Send a command and wait for its answer (chunks joined: ``data`` of every chunk); None: no answer."""
        assert self.conn is not None
        ident = uuid.uuid4().hex[:12]
        done = threading.Event()
        got: list[dict[str, Any]] = []
        self._waiting[ident] = (done, got)
        try:
            self.conn.publish(f"{self.settings.prefix}/{agent}/cmd/{name}", msgpack.packb({**req, "id": ident}))
            if not done.wait(timeout_s):
                return None
        finally:
            self._waiting.pop(ident, None)
        first = got[0]
        if "chunks" in first:
            chunks = sorted(got, key=lambda c: int(c["chunk"]))
            return {"ok": True, "meta": first.get("meta"), "data": b"".join(bytes(c["data"]) for c in chunks)}
        return first

    def _answer(self, d: dict[str, Any]) -> None:
        waiting = self._waiting.get(str(d.get("id")))
        if waiting is None:
            return
        done, got = waiting
        got.append(d)
        if "chunks" not in d or len(got) >= int(d["chunks"]) or not d.get("ok", True):
            done.set()

    # -- reading ------------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """Agents, their instances with state and worst quality, alarm counts."""
        with self.lock:
            out = {}
            for name, v in sorted(self.agents.items()):
                instances = {}
                for inst, st in (v["state"].get("instances") or {}).items():
                    q = v["quality"].get(inst) or {}
                    instances[inst] = {
                        "plugin": st.get("plugin"),
                        "state": st.get("state"),
                        "worst_quality": sorted(set(q.values()))[0] if q else "good",
                        "age_s": _age(v["ts"].get(inst)),
                    }
                out[name] = {
                    "online": v["status"].get("state", v["status"].get("status")) == "online",
                    "status": v["status"],
                    "instances": instances,
                    "alarm_counts": v["alarms"].get("counts", {}),
                }
            return out

    def agent(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            v = self.agents.get(name)
            if v is None:
                return None
            return {
                **{k: v[k] for k in ("status", "state", "alarms", "audit", "reports", "calibrations")},
                "events": list(v["events"]),
                "time_zone": self._zone(v),
            }

    def _zone(self, view: dict[str, Any]) -> str:
        """The zone an agent's times are shown in: its latest shift report's (the production
        instance's ``timezone``, so the panel and the reports agree), else the panel's."""
        reports = sorted(view["reports"].values(), key=lambda r: str(r.get("ended_utc") or ""))
        named = [str(r["time_zone"]) for r in reports if isinstance(r, dict) and r.get("time_zone")]
        return named[-1] if named and known_zone(named[-1]) else self.time_zone

    def instance(self, agent: str, inst: str) -> dict[str, Any] | None:
        with self.lock:
            v = self.agents.get(agent)
            if v is None:
                return None
            return {
                "values": dict(v["values"].get(inst, {})),
                "quality": dict(v["quality"].get(inst, {})),
                "ts": v["ts"].get(inst),
                "state": (v["state"].get("instances") or {}).get(inst, {}),
            }

    def changes_since(self, version: int) -> tuple[int, list[tuple[str, str]]]:
        """(current version, [(agent, what)] changed after ``version``)."""
        with self.lock:
            return self.version, [k for k, at in self.dirty.items() if at > version]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _age(ts_ms: Any) -> float | None:
    return None if not isinstance(ts_ms, (int, float)) else round(time.time() - ts_ms / 1000, 1)
