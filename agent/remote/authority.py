"""Who may run which command: read commands are open, change commands need the file's authority.

Commands are classed as **read** (ping, status, config, capture, captures, capture_get, report,
history, alarms, audit, ``calibrate`` with ``action = "show"``) or **change** (everything else: write, calibrate,
restart, reload, maintenance_done, ack, sign_off, shelve and any command a plugin adds). When the
local file sets ``[remote] require_signature``, a change command must be signed the way config
pushes are (agent/remote/signing.py: same canonical bytes, key ids, ``target``, ``expires``,
``nonce``) and carry ``cmd`` (its own name, so a signed ``ping`` cannot be replayed as a
``restart``) and ``by`` (who). The key must be trusted for that command: ``[remote] trusted_keys``
may sign everything, ``[remote] command_keys`` adds keys per command name (or ``change`` for every
change command). Every change command, run or refused, is audited by ``record_action``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.agent.config.layers import atomic_write
from edge_agent.agent.config.schema import Config, RemoteSection
from edge_agent.agent.remote.signing import KeyRing, TrustedKeyError, verify

log = logging.getLogger("agent.audit")

READ_COMMANDS = frozenset(
    {
        "ping",
        "status",
        "config",
        "capture",
        "captures",
        "capture_get",
        "report",
        "maintenance",
        "history",
        "alarms",
        "audit",
    }
)
ANY_CHANGE = "change"  # the command_keys entry whose keys may sign every change command
MAX_COMMAND_TTL_S = 900  # a signed command expires within 15 min: a captured one cannot be kept for later
MAX_BY_CHARS = 64
NONCE_FILE = "command-nonces.json"
NONCE_KEEP = 2000


class Unauthorized(Exception):
    """A change command without the authority the local file asks for; the message says what is missing."""


@dataclass(frozen=True)
class Actor:
    """Who asked: ``by`` as given (signed when ``kid`` is set) and where the command came from."""

    by: str
    kid: str | None = None
    source: str = "mqtt"


def command_class(name: str, args: Mapping[str, Any]) -> str:
    """``read`` or ``change``; unknown names are changes (a plugin's command may change state)."""
    if name in READ_COMMANDS or (name == "calibrate" and args.get("action") == "show"):
        return "read"
    return "change"


def _by(req: Mapping[str, Any]) -> str | None:
    """``by`` of the request (or of its args, where calibrate and maintenance_done had it)."""
    args = req.get("args")
    by = req.get("by", args.get("by") if isinstance(args, Mapping) else None)
    return by.strip()[:MAX_BY_CHARS] if isinstance(by, str) and by.strip() else None


@dataclass
class CommandNonces:
    """Nonces of signed commands, kept (on disk, 0600) until they expire: a replay is refused even
    after a restart."""

    path: Path
    seen: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, state_dir: str) -> CommandNonces:
        path = Path(state_dir) / NONCE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            seen = {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError, TypeError):
            seen = {}
        return cls(path, seen)

    def use(self, nonce: str, expires: int, now: float) -> None:
        """Remember a nonce; Unauthorized when it was used before."""
        if nonce in self.seen:
            raise Unauthorized(f"nonce: {nonce!r} was already used (a replayed command)")
        self.seen = {n: e for n, e in self.seen.items() if e >= now}
        self.seen[nonce] = expires
        if len(self.seen) > NONCE_KEEP:
            self.seen = dict(sorted(self.seen.items(), key=lambda kv: kv[1])[-NONCE_KEEP:])
        try:
            atomic_write(self.path, json.dumps(self.seen).encode())
        except OSError as exc:  # kept in memory; a restart could then accept a replay within its expiry
            log.error("cannot store command nonces in %s: %s", self.path, exc)


class Authority:
    """Checks change commands against the local file's ``[remote]`` section (read at every call)."""

    def __init__(self, file_config: Callable[[], Config]) -> None:
        self.file_config = file_config  # the local file as it is now (a reload may change [remote])
        self.keys = KeyRing()
        self.nonces: CommandNonces | None = None

    def remote(self) -> RemoteSection:
        return self.file_config().remote

    def authorize(self, name: str, req: Mapping[str, Any], source: str) -> Actor:
        """The actor of a command; Unauthorized when the file requires a signature it lacks."""
        by = _by(req)
        r = self.remote()
        if not r.require_signature:
            return Actor(by or "(not given)", None, source)
        if source == "sparkplug":
            if r.unsigned_sparkplug_writes:
                return Actor(by or "sparkplug host", None, source)
            raise Unauthorized(
                "Sparkplug DCMD cannot carry a signature and [remote] require_signature = true "
                "(set [remote] unsigned_sparkplug_writes = true to let the broker's ACL decide)"
            )
        doc = dict(req)
        self._check_binding(name, doc, by)
        why = verify(doc, self._keys_for(name, doc.get("kid")))
        if why:
            raise Unauthorized(why)
        self._nonces().use(str(doc["nonce"]), int(doc["expires"]), time.time())
        return Actor(str(by), str(doc.get("kid")), source)

    def _check_binding(self, name: str, doc: dict[str, Any], by: str | None) -> None:
        missing = [k for k in ("cmd", "target", "expires", "nonce", "kid", "sig") if k not in doc]
        if by is None:
            missing.append("by")
        if missing:
            raise Unauthorized(
                f"a change command must be signed ([remote] require_signature = true): missing {', '.join(missing)} "
                "(edge-agent cmd --sign KEY --by NAME signs it)"
            )
        if doc["cmd"] != name:
            raise Unauthorized(f"cmd: signed for {doc['cmd']!r}, sent as {name!r}")
        mine = f"agent:{self.file_config().agent_id}"
        if doc["target"] != mine:
            raise Unauthorized(f"target: {doc['target']!r} is not this agent ({mine})")
        expires, now = doc["expires"], time.time()
        # a Pi before NTP judges expiry by a clock days behind: the answer says what it reads (issue 29)
        reads = f"; this agent's clock reads {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(now))} UTC"
        if not isinstance(expires, int) or isinstance(expires, bool) or expires < now:
            raise Unauthorized(f"expires: the command has expired (or is not Unix seconds{reads})")
        if expires > now + MAX_COMMAND_TTL_S:
            ahead = f"more than {MAX_COMMAND_TTL_S} s ahead"
            raise Unauthorized(f"expires: {ahead} (signed commands are short-lived{reads})")
        if not isinstance(doc["nonce"], str) or not 8 <= len(doc["nonce"]) <= 128:
            raise Unauthorized("nonce: must be a string of 8-128 characters")

    def _keys_for(self, name: str, kid: Any) -> dict[str, Any]:
        """The keys that may sign this command; Unauthorized naming the kid when it is not one of them."""
        r = self.remote()
        entries = [*r.trusted_keys, *r.command_keys.get(ANY_CHANGE, []), *r.command_keys.get(name, [])]
        try:
            allowed = self.keys.keys(entries)
        except (TrustedKeyError, OSError) as exc:  # a key file of the local file that cannot be read
            raise Unauthorized(str(exc)) from exc
        if kid not in allowed:
            raise Unauthorized(
                f"kid: key {kid!r} may not sign {name!r} (trusted_keys sign every command; "
                f"[remote] command_keys = {{ {name} = [...] }} or {{ change = [...] }} add keys)"
            )
        return allowed

    def _nonces(self) -> CommandNonces:
        if self.nonces is None:
            self.nonces = CommandNonces.load(self.file_config().agent.state_dir)
        return self.nonces


def _short(value: Any, limit: int = 200) -> Any:
    """An audited argument, cut so that a record stays small."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return value if len(text) <= limit else text[:limit] + "..."


def record_action(
    emit: Callable[[str, str, dict[str, Any]], None] | None,
    *,
    command: str,
    actor: Actor,
    instance: str | None,
    args: Mapping[str, Any],
    outcome: str,
) -> None:
    """The one place an action is recorded: a log line (journald) and an ``audit`` event."""
    fields: dict[str, Any] = {
        "command": command,
        "by": actor.by,
        "kid": actor.kid,
        "source": actor.source,
        "instance": instance,
        "args": {str(k)[:64]: _short(v) for k, v in list(args.items())[:20]},
        "outcome": outcome[:300],
    }
    message = f"{command}{' ' + instance if instance else ''} by {actor.by}: {fields['outcome']}"
    log.info("audit: %s (kid %s, via %s)", message, actor.kid or "-", actor.source)
    if emit is not None:
        try:
            emit("audit", message, fields)
        except Exception:  # the audit event must never stop the command's answer
            log.exception("audit event failed")


__all__ = ["Actor", "Authority", "Unauthorized", "command_class", "record_action"]
