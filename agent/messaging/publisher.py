"""Turns what instances emit into sequenced envelopes in the outbox, and keeps the local data
link (the latest values of every instance, for plugins that use another instance's value)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from edge_agent.agent.clock import now_ms
from edge_agent.agent.extensions import Extensions, Output, PublishHook
from edge_agent.agent.messaging import codec
from edge_agent.agent.messaging.outbox import Message, Outbox, Priority
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.drivers.dotted_keys import is_map
from edge_agent.plugins.contract import Severity

log = logging.getLogger("agent.publish")

_LOG_LEVEL = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ALARM: logging.WARNING,
    Severity.CRITICAL: logging.ERROR,
}


class Topics:
    """Topic names of one agent, from the prefix and the agent id."""

    def __init__(self, prefix: str, agent_id: str) -> None:
        self.base = f"{prefix}/{agent_id}"
        self.status = f"{self.base}/status"
        self.config_set = f"{self.base}/config/set"
        self.config_state = f"{self.base}/config/state"
        self.config_result = f"{self.base}/config/result"
        self.cmd = f"{self.base}/cmd/+"
        self.config_desired = f"{self.base}/config/desired"
        self.prefix = prefix

    def group_desired(self, group: str) -> str:
        return f"{self.prefix}/group/{group}/config/desired"

    def data(self, instance: str) -> str:
        return f"{self.base}/data/{instance}"

    def event(self, instance: str) -> str:
        return f"{self.base}/event/{instance}"

    def cmd_result(self, name: str) -> str:
        return f"{self.base}/cmd/{name}/result"


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested maps: a partial emit must not wipe sibling values of the same channel."""
    out = dict(old)
    for k, v in new.items():
        out[k] = _merge(out[k], v) if is_map(v) and is_map(out.get(k)) else v
    return out


class LocalLink:
    """The latest values each instance emitted, looked up by dotted key."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[Mapping[str, Any], float]] = {}

    def store(self, instance: str, values: Mapping[str, Any]) -> None:
        old = self._latest.get(instance)
        merged = _merge(old[0], values) if old else dict(values)
        self._latest[instance] = (merged, time.monotonic())

    def latest(self, instance: str, key: str) -> tuple[Any, float] | None:
        """Return (value, age_s) or None; ``key`` may be dotted into nested maps."""
        entry = self._latest.get(instance)
        if entry is None:
            return None
        value: Any = entry[0]
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value, time.monotonic() - entry[1]

    def forget(self, instance: str) -> None:
        self._latest.pop(instance, None)


class Publisher:
    """Creates messages: ts and seq are fixed here, when a message is created, not when sent."""

    def __init__(
        self,
        topics: Topics,
        seqs: SeqStore,
        outbox: Outbox,
        *,
        single_float: bool = True,
        native: bool = True,
        extensions: Extensions | None = None,
    ) -> None:
        self.topics = topics
        self.seqs = seqs
        self.outbox = outbox
        # single_float (``[mqtt] float_precision = "single"``): values *declared* float32 go as
        # singles; every other float goes as a single only when that is exact. False: all doubles.
        self.single_float = single_float
        self.narrow: dict[str, Container[str]] = {}  # instance -> its keys declared float32
        self.link = LocalLink()
        self.created = 0
        self.clock_trusted: Callable[[], bool] = lambda: True  # the ClockWatch's verdict (bootstrap)
        self.native = native  # False: data and events go only to the registered outputs (Sparkplug)
        registered = extensions or Extensions()
        # the lists bootstrap registers into: maintenance's hook marks quality; Sparkplug is an output
        self.hooks: list[PublishHook] = registered.hooks
        self.outputs: list[Output] = registered.outputs

    def declare(self, instance: str, specs: Iterable[Any]) -> None:
        """Remember an instance's declared values (ValueSpec: key, dtype) for the wire rule."""
        specs = tuple(specs)
        keys = frozenset(s.key for s in specs if str(s.dtype) == "float32")
        floats = [s for s in specs if str(s.dtype) in ("float32", "float64")]
        # Every float the instance may emit is declared float32 under its own key (the value checks
        # null any other float before it gets here): then every float goes as a single.
        every = bool(floats) and all(str(s.dtype) == "float32" and "*" not in s.key for s in floats)
        self.narrow[instance] = (codec.ALL_FLOATS if every else keys) if self.single_float else frozenset()

    def message(
        self,
        topic: str,
        d: Mapping[str, Any],
        *,
        quality: Mapping[str, str] | None = None,
        ts_ms: int | None = None,
        qos: int = 1,
        retain: bool = False,
        priority: Priority = Priority.DATA,
        narrow: Container[str] = codec.NOTHING,
        durable_seq: bool = True,
    ) -> Message:
        """Build one sequenced message (not queued); ``narrow``: keys declared float32;
        ``durable_seq`` False: a topic named by the network (see SeqStore.next)."""
        seq = self.seqs.next(topic, durable=durable_seq)
        try:
            tq = None if self.clock_trusted() else codec.TQ_UNSYNCED
            payload = codec.encode(d, ts_ms=ts_ms or now_ms(), seq=seq, quality=quality, narrow=narrow, tq=tq)
        except Exception:
            self.seqs.give_back(topic, seq)  # a message that cannot be built must not leave a seq gap
            raise
        self.created += 1
        return Message(topic, payload, qos, retain, priority, seq)

    def data(
        self, instance: str, values: Mapping[str, Any], quality: Mapping[str, str] | None, ts_ms: int | None, qos: int
    ) -> None:
        """Queue a data message of an instance and update the local link."""
        self.link.store(instance, values)
        for hook in self.hooks:
            quality = hook.on_data(instance, values, quality)
        for out in self.outputs:
            try:
                out.data(instance, values, quality, ts_ms)
            except Exception:  # another output's bug must never stop an instance or the native data
                log.exception("%s: output %s failed on a data message", instance, type(out).__name__)
        if not self.native:
            return
        narrow = self.narrow.get(instance, codec.NOTHING)
        msg = self.message(self.topics.data(instance), values, quality=quality, ts_ms=ts_ms, qos=qos, narrow=narrow)
        self.outbox.put(msg)

    def event(
        self, instance: str, kind: str, message: str, severity: Severity, fields: Mapping[str, Any], qos: int = 1
    ) -> None:
        """Queue an event and log it (journald carries events even with no broker)."""
        log.log(_LOG_LEVEL.get(Severity(severity), logging.WARNING), "%s: %s: %s", instance, kind, message)
        for out in self.outputs:
            try:
                out.event(instance, kind, message, str(severity), fields)
            except Exception:
                log.exception("%s: output %s failed on an event", instance, type(out).__name__)
        if self.native or instance == "agent":
            d = {"kind": kind, "severity": str(severity), "msg": message, **fields}
            self.outbox.put(self.message(self.topics.event(instance), d, qos=qos, priority=Priority.EVENT))
        for hook in self.hooks:
            hook.on_event(instance, kind, str(severity), fields)
