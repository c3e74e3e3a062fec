"""Commands to the edge node: NCMD (Rebirth, Next Server), DCMD (tag writes), and the primary
host's STATE; a mixin of SparkplugNode, kept apart so each file stays small."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from edge_agent.agent.messaging.mqtt_session import MqttSession
from edge_agent.agent.sparkplug import device as dev
from edge_agent.agent.sparkplug.payload import DataType, Payload, get_value
from edge_agent.agent.sparkplug.settings import SparkplugSection
from edge_agent.agent.sparkplug.topics import Topics

log = logging.getLogger("agent.sparkplug")

REBIRTH = "Node Control/Rebirth"
NEXT_SERVER = "Node Control/Next Server"
Writer = Callable[[str, str, Any], Awaitable[Any]]  # (instance, key, value) -> result


class NodeCommands:
    """What the node does when told something over MQTT."""

    s: SparkplugSection
    session: MqttSession
    topics: Topics
    node: dev.Device
    devices: dict[str, dev.Device]
    born: bool
    host_online: bool
    host_ts: int
    write: Writer

    if TYPE_CHECKING:  # provided by SparkplugNode

        def rebirth(self) -> None: ...
        def births(self) -> None: ...
        def event(self, instance: str, kind: str, message: str, severity: str, fields: Any) -> None: ...
        def _ndeath_payload(self) -> bytes: ...
        def _spawn(self, coro: Any, name: str) -> None: ...

    def _metrics_of(self, payload: bytes) -> list[Any]:
        p = Payload()
        p.ParseFromString(payload)
        return list(p.metrics)

    def _on_ncmd(self, topic: str, payload: bytes) -> None:
        try:
            metrics = self._metrics_of(payload)
        except Exception as exc:  # protobuf raises DecodeError and friends
            log.warning("sparkplug: NCMD not decodable: %s", exc)
            return
        by_alias = {m.alias: m.name for m in self.node}
        for m in metrics:
            name = m.name or by_alias.get(m.alias, "")
            value = get_value(m, m.datatype or DataType.BOOLEAN)
            log.info("sparkplug: NCMD %s = %r", name, value)
            if name == REBIRTH and value:
                self.rebirth()
            elif name == NEXT_SERVER and value:
                self.next_server()
            else:
                self.event("agent", "ncmd_rejected", f"unsupported node command {name!r}", "warning", {})

    def next_server(self) -> None:
        """NCMD Node Control/Next Server: NDEATH, disconnect, connect again (one broker: the same)."""
        self.born = False
        self._spawn(self._leave(), "sparkplug-leave")

    async def _leave(self) -> None:
        """Publish NDEATH, wait for its PUBACK (else paho resends it in the next session), disconnect."""
        if not self.session.connected.is_set():
            return
        info = self.session.client.publish(self.topics.ndeath, self._ndeath_payload(), qos=1, retain=False)
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline and self.session.connected.is_set():
            await asyncio.sleep(0.01)
        self.session.client.disconnect()

    async def _on_dcmd(self, topic: str, payload: bytes) -> None:
        """DCMD: write each metric through the instance's own write path (allow_writes, writable, limits)."""
        name = topic.rsplit("/", 1)[-1]
        d = self.devices.get(name)
        try:
            metrics = self._metrics_of(payload)
        except Exception as exc:
            log.warning("sparkplug: DCMD for %s not decodable: %s", name, exc)
            return
        for m in metrics:
            md = (
                None
                if d is None
                else next((x for x in d if x.name == m.name or (not m.name and x.alias == m.alias)), None)
            )
            label = m.name or f"alias {m.alias}"
            if md is None or md.key.startswith(("Event/", "Alarms/", "Faults/")):
                self._refused(name, f"DCMD {label}: no such writable metric on device {name!r}")
                continue
            value = get_value(m, m.datatype or md.datatype)
            try:
                await self.write(name, md.key, value)
                log.info("sparkplug: DCMD %s/%s := %r", name, md.key, value)
            except Exception as exc:
                self._refused(name, f"DCMD {md.name} := {value!r} refused: {exc}")

    def _refused(self, device: str, why: str) -> None:
        log.warning("sparkplug: %s", why)
        self.event(device if device in self.devices else "agent", "dcmd_rejected", why, "warning", {})

    def _on_state(self, topic: str, payload: bytes) -> None:
        """spBv1.0/STATE/<host>: ``{"online": bool, "timestamp": ms}`` (3.0 JSON form)."""
        try:
            state = json.loads(payload)
            online, ts = bool(state["online"]), int(state["timestamp"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("sparkplug: STATE on %s not understood (%s): %r", topic, exc, payload[:80])
            return
        if ts < self.host_ts:
            return  # an older state than one already seen
        self.host_ts = ts
        was, self.host_online = self.host_online, online
        log.info("sparkplug: primary host %s is %s", self.s.primary_host_id, "online" if online else "offline")
        if online and not self.born:
            self.births()
        elif not online and was and self.born:
            self.born = False  # from now on data goes to the store
            self.next_server()  # 3.0: NDEATH and disconnect
