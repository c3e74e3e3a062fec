"""Remote configuration over MQTT: pushes on ``config/set`` and retained desired state on
``config/desired`` (per agent and per group), bound, signed, proven by a good read.

A document (MessagePack, or JSON detected by its first byte) carries ``version``, either
``config = {instances = [...]}`` (the whole pushed layer) or ``patch = {set = [...], remove =
[...]}``, and optionally ``target``, ``expires``, ``nonce``, ``check_s``, ``force``, ``kid``,
``sig`` and a correlation ``id``. Only instances travel: ``[agent]``, ``[mqtt]``, ``[remote]`` and
``[spool]`` come from the local file, always. Every push gets one answer on ``config/result``;
see docs/remote.md for the whole protocol.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import msgpack
from edge_agent.agent.bounds import MAX_SAFE_INT, echo_id, int_in, short, value_errors
from edge_agent.agent.config.layers import PushedLayer
from edge_agent.agent.config.schema import canonical_hash
from edge_agent.agent.remote.push_limits import reach_errors
from edge_agent.agent.remote.signing import KeyRing, TrustedKeyError, verify
from edge_agent.agent.runtime.control import Rejected

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge_agent.agent.runtime.control import AgentControl

log = logging.getLogger("agent.remote")

DOC_KEYS = ("version", "config", "patch", "target", "expires", "nonce", "check_s", "force", "kid", "sig", "id")
LOCAL_SECTIONS = ("agent", "mqtt", "remote", "spool", "sparkplug", "history")


def parse_document(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Decode a push (MessagePack or JSON) and check its shape; raise Rejected."""
    if len(payload) > max_bytes:
        raise Rejected([f"(document): {len(payload)} bytes exceeds remote.max_bytes = {max_bytes}"])
    try:
        if payload[:1] in (b"{", b" ", b"\n"):
            doc = json.loads(payload.decode("utf-8"))
        else:
            doc = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, UnicodeDecodeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise Rejected([f"(document): neither MessagePack nor JSON: {type(exc).__name__}: {str(exc)[:100]}"]) from exc
    except Exception as exc:  # msgpack raises assorted types on hostile input
        raise Rejected([f"(document): undecodable: {type(exc).__name__}"]) from exc
    if not isinstance(doc, dict):
        raise Rejected([f"(document): expected a map, got {type(doc).__name__}"])
    errors = _shape_errors(doc) or value_errors(doc)
    if errors:
        rejected = Rejected(errors)
        rejected.ident = echo_id(doc.get("id"))  # echoed even so, bounded
        raise rejected
    return doc


MAX_EXPIRES_S = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second every clock can print
MAX_TEXT_CHARS = 128  # id, kid


def _shape_errors(doc: dict[str, Any]) -> list[str]:
    errors = []
    if not int_in(doc.get("version"), 1, MAX_SAFE_INT):
        errors.append(f"version: required, an integer 1..{MAX_SAFE_INT} (0 means the local file alone)")
    if ("config" in doc) == ("patch" in doc):
        errors.append("config: exactly one of config (the whole pushed set) or patch (set/remove) is required")
    if "config" in doc and not isinstance(doc["config"], dict):
        errors.append("config: a map with instances")
    if "patch" in doc and not isinstance(doc["patch"], dict):
        errors.append("patch: a map with set (instance tables) and/or remove (names)")
    if (
        "id" in doc
        and not (isinstance(doc["id"], str) and len(doc["id"]) <= MAX_TEXT_CHARS)
        and not int_in(doc["id"], -MAX_SAFE_INT, MAX_SAFE_INT)
    ):
        errors.append(f"id: must be a string of at most {MAX_TEXT_CHARS} characters or an integer within +-2^53")
    for key, ok, what in (
        ("target", lambda v: isinstance(v, str) and len(v) <= 256, 'a string "agent:ID" or "group:NAME"'),
        ("expires", lambda v: int_in(v, 0, MAX_EXPIRES_S), f"an integer 0..{MAX_EXPIRES_S} (Unix seconds)"),
        ("nonce", lambda v: isinstance(v, str) and 8 <= len(v) <= 128, "a string of 8-128 characters"),
        (
            "check_s",
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 3600,
            "seconds, 0 < s <= 3600",
        ),
        ("force", lambda v: isinstance(v, bool), "true or false"),
        ("kid", lambda v: isinstance(v, str) and len(v) <= MAX_TEXT_CHARS, "a key id string"),
        ("sig", lambda v: isinstance(v, str | bytes) and len(v) <= 256, "an Ed25519 signature (base64 or bytes)"),
    ):
        if key in doc and not ok(doc[key]):
            errors.append(f"{key}: must be {what}")
    unknown = sorted(str(k) for k in doc if k not in DOC_KEYS)
    if unknown:
        errors.append(f"(document): unknown keys {', '.join(unknown)} (allowed: {', '.join(DOC_KEYS)})")
    return errors


class RemoteConfig:
    """Handles pushes and desired documents for one agent; one at a time."""

    def __init__(
        self, control: AgentControl, *, agent_id: str, groups: tuple[str, ...], answer: Callable[[dict[str, Any]], None]
    ) -> None:
        self.control = control
        self.agent_id = agent_id
        self.groups = groups
        self.answer = answer
        self.lock = asyncio.Lock()
        self.last_push = 0.0
        self._keys = KeyRing()  # re-read when [remote] trusted_keys or a key file changes

    async def on_push(self, topic: str, payload: bytes) -> None:
        """``config/set``: a one-shot push, always answered."""
        await self._handle(topic, payload, desired=False)

    async def on_desired(self, topic: str, payload: bytes) -> None:
        """``config/desired`` (agent or group, retained): applied when newer than what runs."""
        await self._handle(topic, payload, desired=True)

    async def _handle(self, topic: str, payload: bytes, *, desired: bool) -> None:
        ident: Any = None
        attempted: Any = None
        result: dict[str, Any] | None
        try:
            doc = parse_document(payload, self.control.remote.max_bytes)
            ident, attempted = echo_id(doc.get("id")), doc.get("version")
            if not desired:
                self._rate_limit()
            async with self.lock:
                result = await self._process(topic, doc, desired)
        except Rejected as exc:
            ident = ident if ident is not None else exc.ident
            result = {"status": "rejected", "errors": exc.errors}
            log.warning("config %s rejected: %s", "desired" if desired else "push", "; ".join(exc.errors)[:500])
        except Exception as exc:  # never let a push take the agent down
            log.exception("config push failed")
            result = {"status": "rejected", "errors": [f"(internal): {type(exc).__name__}: {exc}"]}
        if result is None:  # a retained desired document that is already applied: nothing to say
            return
        if "errors" in result:  # an error may quote the input: never let it grow an answer
            result["errors"] = [short(str(e)) for e in result["errors"][:20]]
        if result["status"] == "rejected" and int_in(attempted, 1, MAX_SAFE_INT):
            result.setdefault("attempted", attempted)
        if ident is not None:
            result["id"] = ident
        result["agent"] = self.agent_id
        if desired:
            result["source"] = topic
        if result["status"] not in ("accepted", "already_applied"):
            # reported at once, stored with the next commit: a flood of bad pushes must not wear the SD card
            self.control.note_result(result | {"via": _via(topic, desired)}, store=False)
        self.answer(result)

    def _rate_limit(self) -> None:
        now = time.monotonic()
        if now - self.last_push < self.control.remote.min_interval_s:
            raise Rejected([f"(document): too many pushes: at most one per {self.control.remote.min_interval_s} s"])
        self.last_push = now

    async def _process(self, topic: str, doc: dict[str, Any], desired: bool) -> dict[str, Any] | None:
        self._check_binding(topic, doc, desired)
        layer = self.control.layer
        nonce = doc.get("nonce")
        seen = isinstance(nonce, str) and nonce in layer.nonces
        version, force = doc["version"], bool(doc.get("force"))
        via = _via(topic, desired)
        if desired and version == layer.version:
            force = False  # re-running the version that runs is a one-shot action (config/set), never a retained one
        if desired:
            # a group's document at the version that runs is nothing to do: the agent's own document
            # of that version wins (push-config writes both; their sets may differ by the agent's own pushes)
            older = version < layer.version or (version == layer.version and via.startswith("group:"))
            if seen or (older and not force):
                return None  # redelivered or older than what runs: the reconcile loop has nothing to do
            if "patch" in doc:
                raise Rejected(
                    [
                        "patch: a desired document holds the whole pushed set (config), so an agent that was "
                        "offline for any sequence of pushes converges to the same set (push-config resolves --patch)"
                    ]
                )
            layer.desired_version = max(layer.desired_version, version)
        elif seen:
            raise Rejected([f"nonce: {nonce!r} was already used (a replayed push)"])
        instances = self._new_instances(doc, layer)
        if version == layer.version:  # a version names one content, also with force
            if canonical_hash(instances) != canonical_hash(layer.instances):
                raise Rejected([f"version: {version} is already applied with other content (push a new version)"])
            if not force:
                self._remember(doc)
                self.control.commit({"status": "already_applied", "version": version, "id": doc.get("id"), "via": via})
                return {"status": "already_applied", "version": version, "instances_hash": self.control.hash}
        if version < layer.version and not force:
            raise Rejected(
                [f"version: stale version {version} (applied: {layer.version}; push a newer one, or --force)"]
            )
        new = PushedLayer(
            version=version, instances=instances, desired_version=layer.desired_version, nonces=dict(layer.nonces)
        )
        self._remember(doc)
        result = await self.control.apply_layer(new, check_s=doc.get("check_s"), force=force)
        if result["status"] == "accepted":
            self.control.layer.nonces = dict(layer.nonces)
            self.control.commit(result | {"id": doc.get("id"), "via": via})
        return result

    def _remember(self, doc: dict[str, Any]) -> None:
        nonce = doc.get("nonce")
        if isinstance(nonce, str):
            expires = doc.get("expires") or int(time.time()) + 7 * 86400
            self.control.layer.remember(nonce, expires, time.time())

    def _check_binding(self, topic: str, doc: dict[str, Any], desired: bool) -> None:
        """Signature, target, expiry: a document meant for another agent or time is refused."""
        remote = self.control.remote
        if remote.require_signature:
            # a retained desired document may carry no expiry: target, version and nonce already
            # stop its replay, and a document that expires would strand agents that were away longer
            needed = ("target", "nonce") if desired else ("target", "expires", "nonce")
            missing = [k for k in needed if k not in doc]
            if missing:
                raise Rejected([f"{k}: required in a signed push (remote.require_signature = true)" for k in missing])
            why = verify(doc, self._trusted_keys())
            if why:
                raise Rejected([why])
        target = doc.get("target")
        if target is not None:
            mine = {f"agent:{self.agent_id}", *(f"group:{g}" for g in self.groups)}
            if target not in mine:
                raise Rejected(
                    [
                        f"target: {target!r} is not this agent (this is agent:{self.agent_id}"
                        + "".join(f", group:{g}" for g in self.groups)
                        + ")"
                    ]
                )
            if desired and "/group/" in topic and target != f"group:{topic.split('/')[-3]}":
                raise Rejected([f"target: {target!r} does not match the topic {topic}"])
            if desired and "/group/" not in topic and target != f"agent:{self.agent_id}":
                raise Rejected([f"target: {target!r} does not match the topic {topic}"])
        expires = doc.get("expires")
        if expires is not None and expires < time.time():
            raise Rejected(
                [f"expires: the document expired at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}"]
            )

    def _trusted_keys(self) -> dict[str, Any]:
        """The keys of the local file's remote.trusted_keys, read again whenever a reload changed it."""
        try:
            return self._keys.keys(list(self.control.remote.trusted_keys))
        except (TrustedKeyError, OSError) as exc:
            raise Rejected([str(exc)]) from exc

    def reset_keys(self) -> None:
        """Read remote.trusted_keys again at the next push (key files may have been replaced)."""
        self._keys.reset()

    def _new_instances(self, doc: dict[str, Any], layer: PushedLayer) -> list[dict[str, Any]]:
        if "config" in doc:
            cfg = doc["config"]
            local = [k for k in cfg if k in LOCAL_SECTIONS]
            other = [k for k in cfg if k not in LOCAL_SECTIONS and k != "instances"]
            errors = [
                f"{k}: [{k}] comes from the agent's local file only; a push may change instances only" for k in local
            ]
            errors += [f"config.{k}: unknown key (a push carries instances only)" for k in other]
            instances = cfg.get("instances", [])
            if not isinstance(instances, list):
                errors.append("config.instances: expected a list of instance tables")
            if errors:
                raise Rejected(errors)
        else:
            instances = self._patched(doc["patch"], layer)
        limit = self.control.remote.max_instances
        if len(instances) > limit:
            raise Rejected([f"config.instances: {len(instances)} instances exceed remote.max_instances = {limit}"])
        reach = reach_errors(instances, self.control.file_config, self.control.registry)
        if reach:  # before anything is built: a file outside the allowed directories is never opened
            raise Rejected(reach)
        return copy.deepcopy(instances)

    def _patched(self, patch: dict[str, Any], layer: PushedLayer) -> list[dict[str, Any]]:
        """The pushed layer with ``set`` tables added or replaced and ``remove`` names dropped."""
        sets, removes = patch.get("set", []), patch.get("remove", [])
        errors = [f"patch.{k}: unknown key (allowed: set, remove)" for k in patch if k not in ("set", "remove")]
        if not isinstance(sets, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in sets):
            errors.append("patch.set: expected a list of instance tables, each with a name")
            sets = []
        if not isinstance(removes, list) or not all(isinstance(n, str) for n in removes):
            errors.append("patch.remove: expected a list of instance names")
            removes = []
        out = {t["name"]: t for t in layer.instances}
        file_names = {t.get("name") for t in self.control.file_config.raw.get("instances", [])}
        for i, name in enumerate(removes):
            if name in out:
                del out[name]
            elif name in file_names:
                errors.append(
                    f"patch.remove[{i}]: {name!r} comes from the local file; "
                    "to stop it remotely, set it with enabled = false"
                )
            else:
                errors.append(
                    f"patch.remove[{i}]: no pushed instance {name!r} (pushed: {', '.join(sorted(out)) or 'none'})"
                )
        for t in sets:
            out[t["name"]] = t
        if errors:
            raise Rejected(errors)
        return list(out.values())


def _via(topic: str, desired: bool) -> str:
    """Where a document came from, for config/state.results: set, desired (its own) or group:NAME."""
    if not desired:
        return "set"
    return f"group:{topic.split('/')[-3]}" if "/group/" in topic else "desired"
