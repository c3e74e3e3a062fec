"""Commands on ``{p}/{agent}/cmd/{name}``, answered on ``cmd/{name}/result`` (correlated by id).

Built in: ``ping``, ``status``, ``config`` (the effective config), ``restart`` (one instance),
``reload``. Commands talk to the agent only through ``AgentControl``. Any other name with an
``instance`` goes to that instance's plugin (``capture`` for vibration, ``write`` for PLC tags).
A request is a MessagePack (or JSON) map ``{"id": ..., "instance": ..., "args": {...}}``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Protocol

import msgpack
from edge_agent.agent.bounds import echo_id, short, short_repr, value_errors
from edge_agent.agent.remote.authority import (
    READ_COMMANDS,
    Actor,
    Authority,
    Unauthorized,
    command_class,
    record_action,
)
from edge_agent.agent.remote.coalesce import Coalescer
from edge_agent.agent.remote.write_gate import WRITE_COMMANDS, WriteRefused, check_authority, check_finite
from edge_agent.drivers.errors import DriverError
from edge_agent.plugins.contract import UnknownCommand

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from edge_agent.agent.runtime.control import AgentControl

log = logging.getLogger("agent.commands")


class AgentCommandHandler(Protocol):
    """A part of the agent that answers agent-level commands (maintenance, history, alarms, audit)."""

    async def command(self, name: str, args: Mapping[str, Any]) -> Any: ...


class CommandError(Exception):
    """A command that cannot be carried out; the message goes back to the caller."""


MAX_REQUEST_BYTES = 256 * 1024  # a command is a small map; a capture's samples go the other way


def parse_request(payload: bytes) -> dict[str, Any]:
    """Decode a command request; raise CommandError with a clear message."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise CommandError(f"request of {len(payload)} bytes exceeds {MAX_REQUEST_BYTES} bytes")
    try:
        req = json.loads(payload) if payload[:1] == b"{" else msgpack.unpackb(payload, raw=False)
    except Exception as exc:
        raise CommandError(f"request is neither MessagePack nor JSON: {type(exc).__name__}") from exc
    if not isinstance(req, dict):
        raise CommandError("request must be a map {id, instance, args}")
    errors = value_errors(req, "(request)")
    if errors:  # NaN, +-inf, integers no message can carry: refused before any plugin sees them
        raise CommandError("; ".join(errors))
    return req


INSTANCE_COMMANDS = ("restart",)
BUILT_IN = frozenset({"ping", "status", "config", "reload", *INSTANCE_COMMANDS})
RELOAD_MIN_INTERVAL_S = 2.0
MAX_NAME_CHARS = 64  # a command name (the last topic level); an MQTT topic may carry 65,535 bytes
MAX_LEARNED = 64  # plugin command names remembered as known (plugins have a handful each)


class RefusalThrottle:
    """At most ``limit`` refusals recorded per ``window_s``; the rest are counted."""

    def __init__(self, limit: int = 20, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self.start, self.count, self.suppressed = -window_s, 0, 0

    def allow(self, now: float) -> bool:
        if now - self.start >= self.window_s:
            self.start, self.count = now, 0
        self.count += 1
        if self.count > self.limit:
            self.suppressed += 1
            return False
        return True

    def take_suppressed(self) -> int:
        n, self.suppressed = self.suppressed, 0
        return n


def _tables(tables: Any) -> dict[str, dict[str, Any]]:
    """Instance tables by name."""
    return {t["name"]: t for t in tables if isinstance(t, dict) and isinstance(t.get("name"), str)}


class Commands:
    """Answers the built-in commands and hands the others to an instance's plugin."""

    def __init__(
        self,
        control: AgentControl,
        *,
        answer: Callable[[str, dict[str, Any]], None],
        chunk_bytes: int,
        agent_commands: Mapping[str, AgentCommandHandler] | None = None,
        audit: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.control = control
        # name -> the part that answers it: calibrate, captures, capture_get, report (agent/maintenance),
        # history (agent/history)
        self.agent_commands = dict(agent_commands or {})
        self.answer = answer
        self.chunk_bytes = chunk_bytes
        self.audit = audit  # emits the agent's ``audit`` event (kind, message, fields)
        self.authority = Authority(lambda: control.file_config)
        self.refusals = RefusalThrottle()
        self._learned: set[str] = set()  # plugin command names a running plugin took
        # a reload re-reads and re-validates the file: a flood of them shares one run per interval
        self._reloads = Coalescer(lambda: control.reload_file(), RELOAD_MIN_INTERVAL_S)

    def knows(self, name: str) -> bool:
        """True for a command name the agent has (built in, maintenance, or taken by a plugin): only
        these get state keyed by their name (a persistent seq number for cmd/NAME/result)."""
        return (
            name in BUILT_IN
            or name in self.agent_commands
            or name in READ_COMMANDS
            or name in WRITE_COMMANDS
            or name in self._learned
        )

    async def on_command(self, topic: str, payload: bytes) -> None:
        """Entry point from the MQTT session; always answers once (or in chunks)."""
        name = topic.rsplit("/", 1)[-1]
        ident: Any = None
        try:
            if len(name) > MAX_NAME_CHARS:  # no command has such a name: refused before it is audited
                raise CommandError(f"unknown command: a name of {len(name)} characters (at most {MAX_NAME_CHARS})")
            req = parse_request(payload)
            ident = echo_id(req.get("id"))  # echoed: bounded (a 1 MB id must not come back 1 MB)
            result = await self.run(name, req)
            self._answer_ok(name, ident, result)
        except CommandError as exc:
            self._answer(name, {"id": ident, "ok": False, "error": short(str(exc))})
        except Exception as exc:
            log.exception("command %s failed", short(name, 80))
            self._answer(name, {"id": ident, "ok": False, "error": short(f"{type(exc).__name__}: {exc}")})

    async def run(self, name: str, req: dict[str, Any], *, source: str = "mqtt") -> Any:
        """Run one command: read commands at once, change commands with the file's authority, audited."""
        args = req.get("args", {})
        if not isinstance(args, dict):
            raise CommandError("args must be a map")
        if command_class(name, args) == "read":
            return await self._run(name, req, args)
        instance = req.get("instance", args.get("instance"))
        where = instance if isinstance(instance, str) else None
        try:
            actor = self.authority.authorize(name, req, source)
        except Unauthorized as exc:
            self._record(name, Actor("(unauthenticated)", None, source), where, args, f"refused: {exc}")
            raise CommandError(str(exc)) from exc
        if actor.kid is not None and "by" in args:
            args = {**args, "by": actor.by}  # the signed name is the one recorded (calibration, maintenance)
        try:
            result = await self._run(name, req, args)
        except Exception as exc:
            self._record(name, actor, where, args, f"refused: {exc}")
            raise
        self._record(name, actor, where, args, "done")
        return result

    def _record(self, name: str, actor: Actor, instance: str | None, args: dict[str, Any], outcome: str) -> None:
        """Audit a change command; refusals are throttled (a flood of them must not flood the log)."""
        if outcome != "done" and not self.refusals.allow(time.monotonic()):
            return
        if outcome != "done" and self.refusals.suppressed:
            outcome += f" ({self.refusals.take_suppressed()} similar refusals not recorded)"
        record_action(self.audit, command=name, actor=actor, instance=instance, args=args, outcome=outcome)

    async def _run(self, name: str, req: dict[str, Any], args: dict[str, Any]) -> Any:
        c = self.control
        if name == "ping":
            return {"pong": True, "uptime_s": c.stats()["uptime_s"]}
        if name == "status":
            state = c.state()
            config = {
                k: state[k] for k in ("version", "desired_version", "instances_hash", "pushed_hash", "trusted_keys")
            }
            return {
                "stats": c.stats(),
                "instances": state["instances"],
                "config": config,
                "last": state.get("last_result"),
            }
        if name == "config":
            return c.effective_config()
        if name == "reload":
            return await self._reloads.run()
        if name in self.agent_commands:
            return await self._agent_command(name, req, args)
        instance = req.get("instance", args.get("instance"))
        known = ", ".join(c.instance_names()) or "none"
        if instance is None:
            if name in INSTANCE_COMMANDS:
                raise CommandError(f'{name} needs an instance: {{"instance": NAME}} (running: {known})')
            raise CommandError(
                f"unknown command {short_repr(name)} (built in: ping, status, config, reload, restart; "
                "plugin commands such as capture or write need an instance)"
            )
        if not isinstance(instance, str) or instance not in c.instance_names():
            raise CommandError(f"unknown instance {short_repr(instance)} (running: {short(known, 200)})")
        if name == "restart":
            try:
                await c.restart_instance(instance)
            except LookupError as exc:
                raise CommandError(str(exc)) from exc
            return {"restarted": instance}
        if name in WRITE_COMMANDS:
            self._gate_write(instance, args)
        return await self._plugin_command(name, instance, args)

    def _gate_write(self, instance: str, args: dict[str, Any]) -> None:
        """The write gate (agent/remote/write_gate.py): finite values, authority from the local file."""
        c = self.control
        try:
            check_finite(args.get("value"), f"{instance}.{args.get('tag')}")
            check_authority(
                instance,
                file_tables=_tables(c.file_config.raw.get("instances", [])),
                pushed_tables=_tables(c.layer.instances),
                allow_pushed_writes=list(c.remote.allow_pushed_writes),
            )
        except WriteRefused as exc:
            raise CommandError(str(exc)) from exc

    async def _agent_command(self, name: str, req: dict[str, Any], args: dict[str, Any]) -> Any:
        """A command answered by a part of the agent rather than an instance's plugin."""
        if "instance" in req and "instance" not in args:
            args = {**args, "instance": req["instance"]}
        try:
            return await self.agent_commands[name].command(name, args)
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc

    async def _plugin_command(self, name: str, instance: str, args: dict[str, Any]) -> Any:
        plugin = self.control.plugin_of(instance)
        if plugin is None:
            raise CommandError(f"instance {instance!r} is not running yet")
        try:
            result = await plugin.command(name, args)
            if len(self._learned) < MAX_LEARNED:
                self._learned.add(name)
            return result
        except UnknownCommand as exc:
            raise CommandError(f"instance {instance!r} does not support command {short_repr(name)}") from exc
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        except DriverError as exc:
            raise CommandError(f"device error ({exc.quality}): {exc}") from exc

    def _answer_ok(self, name: str, ident: Any, result: Any) -> None:
        if isinstance(result, dict) and isinstance(result.get("samples"), bytes | bytearray):
            self._answer_chunks(name, ident, result)
        else:
            self._answer(name, {"id": ident, "ok": True, "result": result})

    def _answer_chunks(self, name: str, ident: Any, result: dict[str, Any]) -> None:
        data = bytes(result["samples"])
        meta = {k: v for k, v in result.items() if k != "samples"}
        size = self.chunk_bytes
        chunks = max(1, math.ceil(len(data) / size))
        for i in range(chunks):
            d: dict[str, Any] = {
                "id": ident,
                "ok": True,
                "chunk": i,
                "chunks": chunks,
                "data": data[i * size : (i + 1) * size],
            }
            if i == 0:
                d["meta"] = meta
            self._answer(name, d)

    def _answer(self, name: str, d: dict[str, Any]) -> None:
        self.answer(name, d)
