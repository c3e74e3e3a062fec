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
from edge_agent.agent.config.layers import layer_hash
from edge_agent.agent.errors import CodecError
from edge_agent.agent.messaging import codec
from edge_agent.agent.ops.connection import ClientSettings, Connection

FAULTED = ("degraded", "hung", "backoff", "stopped", "restarting", "failed")  # live states that are not healthy


@dataclass
class DesiredDoc:
    """One retained desired document: an agent's own (``agent:ID``) or a group's (``group:NAME``)."""

    key: str
    doc: dict[str, Any]

    @property
    def version(self) -> int:
        v = self.doc.get("version")
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    @property
    def instances(self) -> list[dict[str, Any]] | None:
        """The whole desired pushed set; None for a patch (written by an older push-config)."""
        cfg = self.doc.get("config")
        insts = cfg.get("instances", []) if isinstance(cfg, dict) else None
        return [t for t in insts if isinstance(t, dict)] if isinstance(insts, list) else None

    @property
    def hash(self) -> str | None:
        insts = self.instances
        return layer_hash(insts) if insts is not None else None

    @property
    def kid(self) -> str:
        return str(self.doc.get("kid", ""))

    @property
    def expires(self) -> int | None:
        e = self.doc.get("expires")
        return e if isinstance(e, int) and not isinstance(e, bool) else None


@dataclass
class AgentInfo:
    """One agent's retained status and reported config state, and the desired document it follows."""

    id: str
    online: bool = False
    agent_version: str = ""
    groups: list[str] = field(default_factory=list)
    version: int = 0  # applied pushed config version
    desired_version: int = 0
    hash: str = ""  # instances_hash: the effective set (file + pushed)
    pushed_hash: str = ""  # the pushed layer alone: compared with the desired document's
    trusted_keys: list[str] | None = None  # key ids (None: an agent too old to say)
    ok: int = 0
    faulted: list[str] = field(default_factory=list)
    last_seen_ms: int = 0
    last_result: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    desired: DesiredDoc | None = None
    drift: bool = False
    why: str = ""  # why the agent does not run its desired document

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "online": self.online,
            "agent_version": self.agent_version,
            "groups": self.groups,
            "version": self.version,
            "desired_version": self.desired_version,
            "desired_from": self.desired.key if self.desired else None,
            "desired_hash": self.desired.hash if self.desired else None,
            "pushed_hash": self.pushed_hash,
            "drift": self.drift,
            "why": self.why,
            "instances_hash": self.hash,
            "instances_ok": self.ok,
            "instances_faulted": self.faulted,
            "trusted_keys": self.trusted_keys,
            "last_seen_ms": self.last_seen_ms,
            "last_result": self.last_result,
            "results": self.results,
        }


@dataclass
class Fleet:
    """Every agent that ever reported, and every retained desired document."""

    agents: dict[str, AgentInfo] = field(default_factory=dict)
    docs: dict[str, DesiredDoc] = field(default_factory=dict)

    def desired_for(self, agent: str) -> DesiredDoc | None:
        """The document an agent follows: the newest of its own and its groups' (its own on a tie,
        as the agent decides)."""
        info = self.agents.get(agent)
        own = self.docs.get(f"agent:{agent}")
        cands = [d for d in [own, *(self.docs.get(f"group:{g}") for g in (info.groups if info else []))] if d]
        return max(cands, key=lambda d: (d.version, d is own), default=None)

    def members(self, group: str) -> list[str]:
        return sorted(a for a, info in self.agents.items() if group in info.groups)


def desired_topic(prefix: str, key: str) -> str:
    """The retained topic of a desired document's key (``agent:ID`` or ``group:NAME``)."""
    kind, name = key.split(":", 1)
    return f"{prefix}/group/{name}/config/desired" if kind == "group" else f"{prefix}/{name}/config/desired"


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def collect(settings: ClientSettings, *, quiet_s: float = 0.5, max_s: float = 5.0) -> dict[str, AgentInfo]:
    """Every agent with its drift assessed (see ``read_fleet``)."""
    return read_fleet(settings, quiet_s=quiet_s, max_s=max_s).agents


def read_fleet(settings: ClientSettings, *, quiet_s: float = 0.5, max_s: float = 5.0) -> Fleet:
    """Read the retained status, config/state and desired documents (agents' and groups') until the
    broker goes quiet. Drift is by content: the agent's pushed_hash against its desired document's."""
    p = settings.prefix
    fleet = Fleet()
    topics = [f"{p}/+/status", f"{p}/+/config/state", f"{p}/+/config/desired", f"{p}/group/+/config/desired"]
    with Connection(settings, topics, name="edge-fleet") as conn:
        deadline = time.monotonic() + max_s
        while (msg := conn.get(min(quiet_s, deadline - time.monotonic()))) is not None:
            _take(fleet, p, *msg[:2])
    now = time.time()
    for a, info in fleet.agents.items():
        assess(info, fleet.desired_for(a), now)
    return fleet


def _take(fleet: Fleet, prefix: str, topic: str, payload: bytes) -> None:
    """One retained message into the fleet view (foreign payloads are skipped with a warning)."""
    parts = topic[len(prefix) + 1 :].split("/")
    if parts[-1] == "desired":
        doc = decode_document(payload)
        if doc is None:
            warn(f"skipping {topic}: not an edge-agent config document")
        else:
            key = f"group:{parts[1]}" if parts[0] == "group" and len(parts) == 4 else f"agent:{parts[0]}"
            fleet.docs[key] = DesiredDoc(key, doc)
        return
    try:
        env = codec.decode(payload)
        d = env["d"]
        if not isinstance(d, dict):
            raise CodecError("d is not a map")
    except (CodecError, KeyError, TypeError) as exc:
        warn(f"skipping {topic}: not an edge-agent message ({exc})")
        return
    info = fleet.agents.setdefault(parts[0], AgentInfo(parts[0]))
    info.last_seen_ms = max(info.last_seen_ms, int(env.get("ts", 0)))
    if parts[-1] == "status":
        _status(info, d)
    else:
        _state(info, d)


def decode_document(payload: bytes) -> dict[str, Any] | None:
    """A config document (MessagePack or JSON map with an integer version), or None."""
    try:
        doc = json.loads(payload) if payload[:1] == b"{" else msgpack.unpackb(payload, raw=False)
    except Exception:  # msgpack raises assorted types on foreign bytes
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return doc if isinstance(version, int) and not isinstance(version, bool) else None


def _status(info: AgentInfo, d: dict[str, Any]) -> None:
    info.online = d.get("state") == "online"
    info.agent_version = str(d.get("version", ""))
    info.groups = [str(g) for g in d.get("groups", []) or []]
    info.version = max(info.version, int(d.get("config_version", 0) or 0))


def _state(info: AgentInfo, d: dict[str, Any]) -> None:
    info.version = int(d.get("version", 0) or 0)
    info.desired_version = max(info.desired_version, int(d.get("desired_version", 0) or 0))
    info.hash = str(d.get("instances_hash", d.get("hash", "")))  # "hash": agents of 0.1
    info.pushed_hash = str(d.get("pushed_hash", ""))
    kids = d.get("trusted_keys")
    info.trusted_keys = [str(k) for k in kids] if isinstance(kids, list) else None
    insts = d.get("instances", {}) or {}
    info.faulted = sorted(n for n, st in insts.items() if isinstance(st, dict) and st.get("state") in FAULTED)
    info.ok = len(insts) - len(info.faulted)
    info.last_result = d.get("last_result", {}) or {}
    results = d.get("results")
    info.results = [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def assess(info: AgentInfo, doc: DesiredDoc | None, now_s: float) -> None:
    """Drift by content and why: the agent's pushed set against the document it follows."""
    info.desired = doc
    if doc is None:  # nothing retained (pushes on config/set only): versions are all there is
        info.drift = info.desired_version > info.version
        info.why = f"desired v{info.desired_version} is not applied" if info.drift else ""
        return
    info.desired_version = max(info.desired_version, doc.version)
    want = doc.hash
    if want is None:
        info.drift, info.why = True, f"{doc.key}: the retained document is a patch (older push-config): push the set"
        return
    same = info.pushed_hash == want if info.pushed_hash else info.version == doc.version  # older agents: version
    info.drift = not same
    info.why = "" if same else _why(info, doc, now_s)


def _why(info: AgentInfo, doc: DesiredDoc, now_s: float) -> str:
    """The reason an agent does not run its desired document, most specific first."""
    failed = [
        r
        for r in [*info.results, info.last_result]
        if r.get("status") in ("rejected", "rolled_back") and doc.version in (r.get("attempted"), r.get("version"))
    ]
    if failed:
        r = failed[-1]
        why = r.get("why") or r.get("reason") or "; ".join(r.get("errors", [])[:1])
        return f"{str(r['status']).replace('_', ' ')} v{doc.version}: {why}"
    if doc.kid and info.trusted_keys is not None and doc.kid not in info.trusted_keys:
        trusts = ", ".join(info.trusted_keys) or "none"
        return f"key not trusted: {doc.key} is signed by {doc.kid}; the agent trusts {trusts} (fleet resign)"
    if doc.expires is not None and doc.expires < now_s:
        return (
            f"expired: {doc.key} v{doc.version} expired at {time.strftime('%Y-%m-%d %H:%M', time.gmtime(doc.expires))}Z"
        )
    if not info.online:
        return f"pending: offline, applies {doc.key} v{doc.version} on reconnect"
    return f"online, runs v{info.version}: {doc.key} v{doc.version} not answered yet (edge-agent cmd {info.id} status)"


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


def fleet_version(agents: dict[str, AgentInfo], docs: dict[str, DesiredDoc] | None = None) -> int:
    """The next fleet-wide version: above every applied or desired version seen (groups' documents
    too), and at least now (Unix seconds), so versions only grow whoever pushed last and to whom."""
    seen = max([0, *(max(a.version, a.desired_version) for a in agents.values())])
    seen = max([seen, *(d.version for d in (docs or {}).values())])
    return max(seen + 1, int(time.time()))


def _last(a: AgentInfo) -> str:
    """The newest failure not followed by an accepted push (an already_applied does not hide it)."""
    history = a.results or ([a.last_result] if a.last_result else [])
    for r in reversed(history):
        if r.get("status") == "accepted":
            return ""
        if r.get("status") not in ("already_applied", None):
            why = r.get("why") or r.get("reason") or "; ".join(r.get("errors", [])[:1])
            version = r.get("attempted", r.get("version"))
            return f"{r.get('status')}{f' v{version}' if version is not None else ''}: {why}"[:100]
    return ""


def table(agents: dict[str, AgentInfo]) -> str:
    """The human inventory: one line per agent, then why it drifts and its last failure, if any."""
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
        if a.drift:
            lines.append(f"{'':22}why: {a.why}")
        if _last(a):
            lines.append(f"{'':22}last result: {_last(a)}")
    drifting = sum(a.drift for a in agents.values())
    lines.append(f"{len(agents)} agent(s), {drifting} drifting")
    return "\n".join(lines)
