"""Remote configuration over MQTT: validated, atomic, per instance, rolled back on failure.

A push on ``config/set`` is ``{"version": n, "config": {...}, "id": "...", "sig": "..."}``
(MessagePack, or JSON detected by its first byte). Steps: check limits, signature and version ->
validate (every error, as check-config prints them) -> **prepare** (build every new or changed
instance and open its driver, stopping nothing) -> **apply** (swap only what changed) ->
**verify** (each new instance completes one good poll in time) -> **commit** (atomic write of
the applied config into state_dir) or **rollback** (the previous instances come back). Every push
gets one answer on ``config/result``: accepted, rejected or rolled_back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
from edge_agent.agent.config import Config, Instance, build, load
from edge_agent.agent.errors import ConfigError
from edge_agent.agent.outbox import Priority
from edge_agent.agent.registry import Registry
from edge_agent.agent.runtime import diff_instances
from edge_agent.agent.supervisor import InstanceRunner
from edge_agent.plugins.contract import Plugin

if TYPE_CHECKING:
    from edge_agent.agent.runtime import Runtime

log = logging.getLogger("agent.remote")

APPLIED_FILE = "applied-config.json"
RESTART_SECTIONS = ("agent", "mqtt", "spool", "remote")


class Rejected(Exception):
    """A push that is refused before anything changes; ``errors`` are "path: message" lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


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
    errors = []
    if not isinstance(doc.get("version"), int) or isinstance(doc.get("version"), bool) or doc["version"] < 0:
        errors.append("version: required, an integer >= 0")
    if not isinstance(doc.get("config"), dict):
        errors.append("config: required, a map with the instances (and optional sections)")
    if "id" in doc and not isinstance(doc["id"], str | int):
        errors.append("id: must be a string or an integer")
    unknown = sorted(str(k) for k in doc if k not in ("version", "config", "id", "sig"))
    if unknown:
        errors.append(f"(document): unknown keys {', '.join(unknown)} (allowed: version, config, id, sig)")
    if errors:
        raise Rejected(errors)
    return doc


def canonical_bytes(version: int, config: dict[str, Any]) -> bytes:
    """The bytes a signature covers: canonical JSON of version and config (sorted keys)."""
    return json.dumps(
        {"config": config, "version": version}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def load_public_keys(entries: list[str]) -> list[Any]:
    """Ed25519 public keys from base64 (32 raw bytes) or PEM file paths."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys = []
    for entry in entries:
        if os.path.exists(entry):
            keys.append(load_pem_public_key(Path(entry).read_bytes()))
        else:
            keys.append(Ed25519PublicKey.from_public_bytes(base64.b64decode(entry)))
    return keys


def verify_signature(doc: dict[str, Any], keys: list[Any]) -> None:
    """Raise Rejected unless ``doc["sig"]`` is a valid signature by one of ``keys``."""
    from cryptography.exceptions import InvalidSignature

    sig = doc.get("sig")
    if sig is None:
        raise Rejected(["sig: a signature is required (remote.require_signature = true)"])
    try:
        raw = sig if isinstance(sig, bytes) else base64.b64decode(str(sig), validate=True)
    except ValueError as exc:
        raise Rejected(["sig: not base64"]) from exc
    data = canonical_bytes(doc["version"], doc["config"])
    for key in keys:
        try:
            key.verify(raw, data)
            return
        except InvalidSignature:
            continue
    raise Rejected(["sig: signature does not match any trusted key (wrong key or tampered document)"])


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file, fsync, keep the previous file as .bak, rename: never a half file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():  # a hard link keeps the previous version with no moment without a file
        bak = path.with_name(path.name + ".bak")
        bak.unlink(missing_ok=True)
        os.link(path, bak)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_effective(path: Path, reg: Registry) -> tuple[Config, str]:
    """The config to run: the file, or the remotely applied one in state_dir when it is newer."""
    base = load(path, reg)
    state = Path(base.agent.state_dir)
    for name in (APPLIED_FILE, APPLIED_FILE + ".bak"):
        candidate = state / name
        if not candidate.exists():
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
            cfg = build(data, reg, source=str(candidate), base_dir=base.base_dir)
        except (ValueError, ConfigError) as exc:
            log.warning("ignoring %s: %s", candidate, exc)
            continue
        if cfg.version >= base.version:
            return cfg, str(candidate)
        break
    return base, str(path)


class RemoteConfig:
    """Handles pushes for one runtime; pushes are applied one at a time."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.lock = asyncio.Lock()
        self.last_push = 0.0
        self.keys: list[Any] | None = None

    async def on_push(self, topic: str, payload: bytes) -> None:
        """Entry point from the MQTT session; always answers once."""
        ident: Any = None
        try:
            doc = parse_document(payload, self.rt.config.remote.max_bytes)
            ident = doc.get("id")
            self._check_limits(doc)
            async with self.lock:
                answer = await self._apply(doc)
        except Rejected as exc:
            answer = {"status": "rejected", "errors": exc.errors}
            log.warning("config push rejected: %s", "; ".join(exc.errors)[:500])
        except Exception as exc:  # never let a push take the agent down
            log.exception("config push failed")
            answer = {"status": "rejected", "errors": [f"(internal): {type(exc).__name__}: {exc}"]}
        if ident is not None:
            answer["id"] = ident
        self.rt.outbox.put(self.rt.publisher.message(self.rt.topics.config_result, answer, priority=Priority.EVENT))

    def _check_limits(self, doc: dict[str, Any]) -> None:
        remote = self.rt.config.remote
        now = time.monotonic()
        if now - self.last_push < remote.min_interval_s:
            raise Rejected([f"(document): too many pushes: at most one per {remote.min_interval_s} s"])
        self.last_push = now
        if remote.require_signature:
            if self.keys is None:
                self.keys = load_public_keys(remote.trusted_keys)
            verify_signature(doc, self.keys)
        if doc["version"] <= self.rt.config.version:
            raise Rejected([f"version: stale version {doc['version']} (applied: {self.rt.config.version})"])
        instances = doc["config"].get("instances", [])
        if isinstance(instances, list) and len(instances) > remote.max_instances:
            raise Rejected(
                [f"config.instances: {len(instances)} instances exceed remote.max_instances = {remote.max_instances}"]
            )

    def _merge(self, doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        pushed = doc["config"]
        restart = [k for k in pushed if k in RESTART_SECTIONS and pushed[k] != self.rt.config.raw.get(k)]
        if restart and not self.rt.config.remote.allow_restart_sections:
            raise Rejected(
                [
                    f"{k}: this section needs a restart and cannot be changed remotely "
                    "(remote.allow_restart_sections = false)"
                    for k in restart
                ]
            )
        merged = {**self.rt.config.raw, **pushed, "version": doc["version"]}
        return merged, restart

    async def _apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        merged, restart = self._merge(doc)
        try:
            new = build(merged, self.rt.registry, source="config/set", base_dir=self.rt.config.base_dir)
        except ConfigError as exc:
            raise Rejected([e.replace("(top)", "config") for e in exc.errors]) from exc
        old = {i.name: i for i in self.rt.config.instances}
        fresh = {i.name: i for i in new.instances}
        summary = diff_instances(old, fresh)
        prepared = await self._prepare([fresh[n] for n in summary["added"] + summary["changed"]])
        if isinstance(prepared, str):
            return {"status": "rolled_back", "reason": prepared, "version": self.rt.config.version}
        await self.rt.stop_instances(summary["removed"] + summary["changed"])
        for runner, opened in prepared:
            self.rt.start_instance(runner.inst, runner, opened)
        failure = await self._verify([r for r, _ in prepared], new.remote.verify_timeout_s)
        if failure:
            await self._rollback(summary, old)
            return {"status": "rolled_back", "reason": failure, "version": self.rt.config.version}
        self._commit(new)
        answer: dict[str, Any] = {"status": "accepted", "version": new.version, "hash": new.hash, "instances": summary}
        if restart:
            answer["restart_required"] = restart
        return answer

    async def _prepare(self, insts: list[Instance]) -> list[tuple[InstanceRunner, tuple[Any, Plugin]]] | str:
        done: list[tuple[InstanceRunner, tuple[Any, Plugin]]] = []
        for inst in insts:
            runner = self.rt.make_runner(inst)
            try:
                async with asyncio.timeout(self.rt.config.remote.verify_timeout_s):
                    opened = await runner.open()
            except Exception as exc:
                for r, (drv, plugin) in done:
                    await r._shutdown(drv, plugin)
                return f"instance {inst.name!r}: could not start: {type(exc).__name__}: {exc}"
            done.append((runner, opened))
        return done

    async def _verify(self, runners: list[InstanceRunner], timeout_s: float) -> str:
        for runner in runners:
            try:
                async with asyncio.timeout(timeout_s):
                    await runner.first_good.wait()
            except TimeoutError:
                why = runner.stats.last_error or "no good read"
                return f"instance {runner.inst.name!r}: no good read within {timeout_s} s ({why})"
        return ""

    async def _rollback(self, summary: dict[str, list[str]], old: dict[str, Instance]) -> None:
        await self.rt.stop_instances(summary["added"] + summary["changed"])
        for name in summary["changed"] + summary["removed"]:
            self.rt.start_instance(old[name])
        self.rt.publish_config_state()

    def _commit(self, new: Config) -> None:
        path = Path(new.agent.state_dir) / APPLIED_FILE
        atomic_write(path, json.dumps(new.raw, indent=1, sort_keys=True).encode())
        self.rt.config = new
        self.rt.applied_ms = int(time.time() * 1000)
        self.rt.publish_config_state()
