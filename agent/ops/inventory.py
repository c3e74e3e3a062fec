"""The fleet as the broker knows it: every agent's retained ``status`` and ``config/state``.

An agent that ever connected left a retained status (online, or offline by its last will), so the
inventory also lists agents that are offline now. Retained payloads that are not ours are skipped
with a warning (another tool under the same prefix must not break a fleet command).
"""

from __future__ import annotations

import fnmatch
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
from edge_agent.agent.errors import CodecError
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientSettings, Connection

FAULTED = ("degraded", "hung", "backoff", "stopped", "restarting", "failed")  # live states that are not healthy


@dataclass
class AgentInfo:
    """One agent's retained status and reported config state."""

    id: str
    online: bool = False
    agent_version: str = ""
    groups: list[str] = field(default_factory=list)
    version: int = 0  # applied pushed config version
    desired_version: int = 0
    hash: str = ""
    ok: int = 0
    faulted: list[str] = field(default_factory=list)
    last_seen_ms: int = 0
    last_result: dict[str, Any] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        """The desired version is not the applied one."""
        return self.desired_version > self.version

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "online": self.online,
            "agent_version": self.agent_version,
            "groups": self.groups,
            "version": self.version,
            "desired_version": self.desired_version,
            "drift": self.drift,
            "instances_hash": self.hash,
            "instances_ok": self.ok,
            "instances_faulted": self.faulted,
            "last_seen_ms": self.last_seen_ms,
            "last_result": self.last_result,
        }


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def collect(settings: ClientSettings, *, quiet_s: float = 0.5, max_s: float = 5.0) -> dict[str, AgentInfo]:
    """Read the retained status, config/state and desired config of every agent (until the broker
    goes quiet). The desired document counts even while the agent is offline, so drift shows."""
    p = settings.prefix
    agents: dict[str, AgentInfo] = {}
    desired: dict[str, int] = {}
    topics = [f"{p}/+/status", f"{p}/+/config/state", f"{p}/+/config/desired"]
    with Connection(settings, topics, name="edge-fleet") as conn:
        deadline = time.monotonic() + max_s
        while (msg := conn.get(min(quiet_s, deadline - time.monotonic()))) is not None:
            topic, payload, _ = msg
            parts = topic.split("/")
            if parts[-1] == "desired":
                version = _desired_version(payload)
                if version is None:
                    warn(f"skipping {topic}: not an edge-agent config document")
                else:
                    desired[parts[1]] = version
                continue
            try:
                env = codec.decode(payload)
                d = env["d"]
                if not isinstance(d, dict):
                    raise CodecError("d is not a map")
            except (CodecError, KeyError, TypeError) as exc:
                warn(f"skipping {topic}: not an edge-agent message ({exc})")
                continue
            info = agents.setdefault(parts[1], AgentInfo(parts[1]))
            info.last_seen_ms = max(info.last_seen_ms, int(env.get("ts", 0)))
            if parts[-1] == "status":
                _status(info, d)
            else:
                _state(info, d)
    for agent, version in desired.items():  # agents that never reported stay unknown
        if agent in agents:
            agents[agent].desired_version = max(agents[agent].desired_version, version)
    return agents


def _desired_version(payload: bytes) -> int | None:
    """The version of a retained desired document (MessagePack or JSON map), or None."""
    try:
        doc = json.loads(payload) if payload[:1] == b"{" else msgpack.unpackb(payload, raw=False)
    except Exception:  # msgpack raises assorted types on foreign bytes
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _status(info: AgentInfo, d: dict[str, Any]) -> None:
    info.online = d.get("state") == "online"
    info.agent_version = str(d.get("version", ""))
    info.groups = [str(g) for g in d.get("groups", []) or []]
    info.version = max(info.version, int(d.get("config_version", 0) or 0))


def _state(info: AgentInfo, d: dict[str, Any]) -> None:
    info.version = int(d.get("version", 0) or 0)
    info.desired_version = max(info.desired_version, int(d.get("desired_version", 0) or 0))
    info.hash = str(d.get("instances_hash", d.get("hash", "")))  # "hash": agents of 0.1
    insts = d.get("instances", {}) or {}
    info.faulted = sorted(n for n, st in insts.items() if isinstance(st, dict) and st.get("state") in FAULTED)
    info.ok = len(insts) - len(info.faulted)
    info.last_result = d.get("last_result", {}) or {}


def select(agents: dict[str, AgentInfo], ids: list[str], groups: list[str]) -> tuple[list[str], list[str]]:
    """(known agent ids matching the ids/patterns/groups, unknown exact ids)."""
    chosen: list[str] = []
    unknown: list[str] = []
    for pattern in ids:
        if any(ch in pattern for ch in "*?["):
            chosen += sorted(a for a in agents if fnmatch.fnmatchcase(a, pattern))
        elif pattern in agents:
            chosen.append(pattern)
        else:
            unknown.append(pattern)
    for g in groups:
        chosen += sorted(a for a, info in agents.items() if g in info.groups)
    return list(dict.fromkeys(chosen)), unknown


def fleet_version(agents: dict[str, AgentInfo]) -> int:
    """The next fleet-wide version: above every applied or desired version seen, and at least now
    (Unix seconds), so versions only grow whoever pushed last and to whichever agents."""
    seen = max([0, *(max(a.version, a.desired_version) for a in agents.values())])
    return max(seen + 1, int(time.time()))


def _last(a: AgentInfo) -> str:
    r = a.last_result
    if not r or r.get("status") in ("accepted", "already_applied"):
        return ""
    why = r.get("reason") or "; ".join(r.get("errors", [])[:1])
    version = r.get("attempted", r.get("version"))
    return f"{r.get('status')}{f' v{version}' if version is not None else ''}: {why}"[:100]


def table(agents: dict[str, AgentInfo]) -> str:
    """The human inventory: one line per agent (the last failed result, if any, on the next line)."""
    lines = [
        f"{'agent':20} {'online':7} {'agent ver':10} {'applied':>11} {'desired':>11} {'drift':6} {'ok':>3} "
        "faulted / last seen"
    ]
    now = time.time() * 1000
    for a in sorted(agents.values(), key=lambda x: x.id):
        seen = f"{(now - a.last_seen_ms) / 1000:.0f} s ago" if a.last_seen_ms else "never"
        faulted = ",".join(a.faulted) or "-"
        lines.append(
            f"{a.id:20} {'yes' if a.online else 'NO':7} {a.agent_version:10} {a.version:>11} {a.desired_version:>11} "
            f"{'DRIFT' if a.drift else '-':6} {a.ok:>3} {faulted} / {seen}"
        )
        if _last(a):
            lines.append(f"{'':22}last result: {_last(a)}")
    return "\n".join(lines)
