"""The Sparkplug B 3.0 edge node: its own MQTT connection (its Will is the NDEATH), births,
data by exception with aliases, deaths, commands, primary host awareness, store-and-forward.

Runs on the asyncio loop like the native session (paho driven from the loop, no lock shared
with another thread). Every message is built when it is sent, so ``seq`` (0-255 over all node
messages) and aliases always belong to the session that carries them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.agent.clock import now_ms
from edge_agent.agent.messaging.mqtt_session import Handler, MqttSession, SessionOptions
from edge_agent.agent.messaging.outbox import MemoryOutbox
from edge_agent.agent.sparkplug import device as dev
from edge_agent.agent.sparkplug.commands import NEXT_SERVER, REBIRTH, NodeCommands, Writer
from edge_agent.agent.sparkplug.payload import (
    DataType,
    Payload,
    quality_properties,
    set_properties,
    set_value,
)
from edge_agent.agent.sparkplug.settings import SparkplugSection
from edge_agent.agent.sparkplug.store import SparkplugStore
from edge_agent.agent.sparkplug.topics import Topics, event_flags
from edge_agent.drivers.contract import ValueSpec

log = logging.getLogger("agent.sparkplug")

NODE = ""  # the device name under which node metrics are kept
COMMAND_COUNTS = {  # counts of the node commands a flood may send, as Health metrics (docs/security.md)
    "rebirth_requests": "Rebirth Requests",
    "rebirth_coalesced": "Rebirths Coalesced",
    "next_server_ignored": "Next Server Ignored",
}
REPLAY_BATCH = 200  # stored records per historical DDATA burst

Health = Callable[[], Mapping[str, tuple[DataType, Any]]]


class SparkplugNode:
    """``async with SparkplugNode(...)``; registered as an output, an instance listener and a service."""

    def __init__(
        self,
        settings: SparkplugSection,
        *,
        agent_id: str,
        state_dir: Path,
        session: SessionOptions,
        health: Health,
        write: Writer,
        clock_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.s = settings
        self.clock_trusted = clock_trusted  # False until the wall clock is synchronised (agent/clock_watch.py)
        self.node_id = settings.edge_node_id or agent_id
        self.topics = Topics(settings.group_id, self.node_id, settings.primary_host_id)
        self.health = health
        self.commands = NodeCommands(self, write)
        self.aliases = dev.Aliases()
        self.node = dev.Device(NODE)
        self.devices: dict[str, dev.Device] = {}
        self.seq = 0
        self._bdseq_path = state_dir / "sparkplug-bdseq"
        self.bdseq = self._load_bdseq()
        self.born = self.ever_born = False
        self.host_online = not settings.primary_host_id
        self.host_ts = 0
        self.host_ts_at_s = 0.0  # monotonic time host_ts was taken: the host's clock, while ours is unsynced
        self.replaying = False
        self.store = (
            SparkplugStore(state_dir / "sparkplug.sqlite", settings.store_max_records)
            if settings.store_forward
            else None
        )
        self.sent: dict[str, int] = {}  # bytes per device ("" = node messages)
        self.counts: dict[str, int] = {}  # messages per type, and rebirth_requests / rebirth_coalesced
        subs: dict[str, Handler] = {self.topics.ncmd: self.commands.on_ncmd, self.topics.dcmd: self.commands.on_dcmd}
        if self.topics.state:
            subs[self.topics.state] = self.commands.on_state
        opts = dataclasses.replace(
            session,
            client_id=f"{session.client_id}-spb",
            will_topic=None,
            will_payload=None,
            birth=self._on_connected,
            subscriptions=subs,
            on_connecting=self._on_connecting,
            separate_inbound=False,  # Sparkplug: commands and STATE belong to the session of the NDEATH Will
        )
        self.session = MqttSession(opts, MemoryOutbox(10))
        self._tasks: list[asyncio.Task[None]] = []
        self._declare_node()

    # --- life cycle ----------------------------------------------------------------------
    async def __aenter__(self) -> SparkplugNode:
        await self.start()
        return self

    async def start(self) -> None:
        """Connect (births follow the connect) and start the health metrics."""
        await self.session.__aenter__()
        self.spawn(self._health_loop(), "sparkplug-health")

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Intentional disconnect: publish NDEATH first (a clean DISCONNECT drops the Will)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if not self.session._closing:
            from edge_agent.agent.messaging.outbox import Message, Priority

            final = Message(self.topics.ndeath, self.ndeath_payload(), 1, False, Priority.STATE, 0)
            await self.session.close(final=final if self.session.connected.is_set() else None, timeout_s=1.0)
        if self.store is not None:
            self.store.close()

    def spawn(self, coro: Any, name: str) -> None:
        """Run ``coro`` as a named task of the node (cancelled by ``close``)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    def _storing(self) -> bool:
        """Keep what cannot be sent: not before the first birth when no host is awaited (the
        births carry the latest values then), always while a primary host is away."""
        return self.store is not None and (self.ever_born or bool(self.s.primary_host_id))

    @property
    def live(self) -> bool:
        return self.born and not self.replaying and self.session.connected.is_set()

    # --- bdSeq and the Will ----------------------------------------------------------------
    def _load_bdseq(self) -> int:
        try:
            return int(self._bdseq_path.read_text().strip()) % 256
        except (OSError, ValueError):
            return 255  # the first connect uses 0

    def _on_connecting(self, client: Any) -> None:
        """Before every CONNECT: the next bdSeq, and the NDEATH Will that carries it."""
        self.bdseq = (self.bdseq + 1) % 256
        try:
            self._bdseq_path.write_text(f"{self.bdseq}\n")
        except OSError as exc:
            log.warning("cannot store the Sparkplug bdSeq in %s: %s", self._bdseq_path, exc)
        client.will_set(self.topics.ndeath, self.ndeath_payload(), qos=1, retain=False)

    def ndeath_payload(self) -> bytes:
        """NDEATH with the current bdSeq (the Will, and the intentional death)."""
        p = Payload()
        p.timestamp = now_ms()
        self._add(p, "bdSeq", DataType.INT64, self.bdseq)
        return bytes(p.SerializeToString())

    # --- births ------------------------------------------------------------------------------
    def _on_connected(self) -> list[Any]:
        """Called by the session on every connect, before it subscribes: births come after."""
        self.born = False
        where = f"{self.s.group_id}/{self.node_id}"
        if self.s.primary_host_id:
            self.host_online = False  # wait for the (retained) STATE of this connection
            log.info(
                "sparkplug: edge node %s connected (bdSeq %d), waiting for %s", where, self.bdseq, self.topics.state
            )
        else:
            log.info("sparkplug: edge node %s connected (bdSeq %d), publishing births", where, self.bdseq)
            asyncio.get_running_loop().call_soon(self.births)
        return []

    def births(self) -> None:
        """NBIRTH (seq 0) and a DBIRTH for every device; then replay what was stored."""
        if not self.session.connected.is_set() or not self.host_online:
            return
        p = Payload()
        p.timestamp = now_ms()
        p.seq = self.seq = 0
        self._add(p, "bdSeq", DataType.INT64, self.bdseq)
        for m in self.node:
            self._add_metric(p, m, birth=True)
        self._send(self.topics.nbirth, p, NODE, "NBIRTH")
        self.born = self.ever_born = self.node.born = True
        for d in self.devices.values():
            d.born = False
            if any(m.value is not None or m.quality for m in d):
                self._dbirth(d)
        if self.store is not None and len(self.store):
            self.replaying = True
            self.spawn(self._replay(), "sparkplug-replay")

    def _dbirth(self, d: dev.Device) -> None:
        p = self._payload()
        for m in d:
            self._add_metric(p, m, birth=True)
        self._send(self.topics.device("DBIRTH", d.name), p, d.name, "DBIRTH")
        d.born = True

    def rebirth(self) -> None:
        """NCMD Node Control/Rebirth: the whole node again, same bdSeq, seq from 0."""
        log.info("sparkplug: rebirth requested")
        self.born = False
        self.births()

    # --- building messages -----------------------------------------------------------------
    def _payload(self) -> Any:
        p = Payload()
        p.timestamp = now_ms()
        self.seq = (self.seq + 1) % 256
        p.seq = self.seq
        return p

    def _add(self, p: Any, name: str, datatype: DataType, value: Any) -> Any:
        m = p.metrics.add()
        m.name = name
        m.timestamp = p.timestamp
        m.datatype = int(datatype)
        set_value(m, datatype, value)
        return m

    def _add_metric(
        self, p: Any, md: dev.MetricDef, *, birth: bool, historical: bool = False, quality: bool = False
    ) -> None:
        m = p.metrics.add()
        if birth:
            m.name = md.name
            m.datatype = int(md.datatype)
        if md.alias:  # 0: none (Node Control/Rebirth, so a host can always send it by name)
            m.alias = md.alias
        m.timestamp = md.ts_ms or p.timestamp
        if historical:
            m.is_historical = True
        set_value(m, md.datatype, md.value)
        props: dict[str, tuple[DataType, Any]] = {}
        if birth and md.unit:
            props["engUnit"] = (DataType.STRING, md.unit)
        if birth or quality:  # 0, 192 or 500 only, our reason beside it (docs/sparkplug.md, quality)
            props.update(quality_properties(md.quality, birth=birth))
        if props:
            set_properties(m, props)

    def _send(self, topic: str, p: Any, device: str, kind: str) -> None:
        data = p.SerializeToString()
        self.session.client.publish(topic, data, qos=0, retain=False)
        self.sent[device] = self.sent.get(device, 0) + len(data)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    # --- data and events in -------------------------------------------------------------------
    def instance_started(self, name: str, specs: tuple[ValueSpec, ...]) -> None:
        """An instance (re)starts: a fresh device with its declared values; DBIRTH at its first data."""
        old = self.devices.pop(name, None)
        if old is not None and old.born and self.live:
            self._ddeath(old)
        d = self.devices[name] = dev.Device(name)
        dev.declare(d, self.aliases, specs)

    def instance_stopped(self, name: str) -> None:
        """An instance stops (removed, changed, restarted, agent stopping): DDEATH."""
        d = self.devices.pop(name, None)
        if d is not None and d.born and self.live:
            self._ddeath(d)

    def _ddeath(self, d: dev.Device) -> None:
        self._send(self.topics.device("DDEATH", d.name), self._payload(), d.name, "DDEATH")
        d.born = False

    def data(
        self, instance: str, values: Mapping[str, Any], quality: Mapping[str, str] | None, ts_ms: int | None
    ) -> None:
        """One emit of an instance: DBIRTH (first, or new metrics), else DDATA of what changed."""
        d = self.devices.get(instance)
        if d is None:  # not started (a late emit of a stopped instance): never a device it did not declare
            return
        ts = ts_ms or now_ms()
        flat = dict(dev.metric_items(values, lists=d.lists))
        q = dict(quality or {})
        changed = self._update(d, flat, q, ts)
        if not self.live:
            if self._storing() and (flat or q):
                self.store.put(instance, ts, flat, q)  # type: ignore[union-attr]
            return
        self._publish_changes(d, changed)

    def _update(
        self, d: dev.Device, flat: Mapping[str, Any], q: Mapping[str, str], ts: int
    ) -> list[tuple[dev.MetricDef, bool]]:
        """Store new values in the table; return (metric, quality changed) for each one given."""
        changed = []
        for key, value in flat.items():
            m = d.metrics.get(key)
            if m is None:
                m = dev.learn(d, self.aliases, key, value)
                d.born = False  # a new metric: the device must be born again
            elif m.datatype in (DataType.INT64, DataType.UINT64) and isinstance(value, int):
                wide = DataType.UINT64 if value >= 2**63 else DataType.INT64 if value < 0 else m.datatype
                if wide is not m.datatype:  # "int" covers uint64 too: the type follows the value
                    m.datatype, d.born = wide, False
            new_q = q.get(key)
            changed.append((m, new_q != m.quality))
            m.value, m.quality, m.ts_ms = value, new_q, ts
        return changed

    def _publish_changes(self, d: dev.Device, changed: list[tuple[dev.MetricDef, bool]]) -> None:
        if not d.born and d is self.node:  # a new node metric: only an NBIRTH (and so every DBIRTH) declares it
            self.rebirth()
            return
        if not d.born:
            self._dbirth(d)
            return
        if not changed:
            return
        p = self._payload()
        for m, q_changed in changed:
            self._add_metric(p, m, birth=False, quality=q_changed)
        topic = self.topics.ndata if d is self.node else self.topics.device("DDATA", d.name)
        self._send(topic, p, d.name, "NDATA" if d is self.node else "DDATA")

    def event(self, instance: str, kind: str, message: str, severity: str, fields: Mapping[str, Any]) -> None:
        """An event as metrics an Ignition user can alarm on (docs/sparkplug.md, events)."""
        d = self.node if instance == "agent" else self.devices.get(instance)
        if d is None:
            return
        count = d.metrics["Event/Count"].value or 0
        flat: dict[str, Any] = {
            "Event/Kind": kind,
            "Event/Message": message,
            "Event/Severity": str(severity),
            "Event/Count": count + 1,
        }
        flat.update(event_flags(kind, fields))
        for key, value in flat.items():
            if key not in d.metrics:
                dev.add(d, self.aliases, key, DataType.BOOLEAN if isinstance(value, bool) else DataType.STRING)
                d.born = False
        ts = now_ms()
        changed = self._update(d, flat, {}, ts)
        if not self.live:
            if self._storing() and d is not self.node:
                self.store.put(instance, ts, flat, {})  # type: ignore[union-attr]
            return
        self._publish_changes(d, changed)
        if kind in ("instance_error", "driver_hung") and d is not self.node and d.born:
            self._ddeath(d)  # the instance failed (restarts) or its device hangs: its values are not live

    # --- store-and-forward, health -----------------------------------------------------------
    async def _replay(self) -> None:
        """Send stored records as historical DDATA in order, then go live."""
        assert self.store is not None
        try:
            while self.born and self.session.connected.is_set():
                batch = self.store.oldest(REPLAY_BATCH)
                if not batch:
                    break
                for _, instance, ts, values, quality in batch:
                    self._historical(instance, ts, values, quality)
                self.store.remove_through(batch[-1][0])
                await asyncio.sleep(0)
        finally:
            self.replaying = False

    def _historical(self, instance: str, ts: int, values: Mapping[str, Any], quality: Mapping[str, str]) -> None:
        d = self.devices.get(instance)
        if d is None or not d.born:
            return
        p = self._payload()
        for key, value in values.items():
            m = d.metrics.get(key)
            if m is not None:
                h = dataclasses.replace(m, value=value, quality=quality.get(key), ts_ms=ts)
                self._add_metric(p, h, birth=False, historical=True, quality=quality.get(key) is not None)
        if p.metrics:
            self._send(self.topics.device("DDATA", d.name), p, d.name, "DDATA")

    def _declare_node(self) -> None:
        for key, datatype in ((REBIRTH, DataType.BOOLEAN), (NEXT_SERVER, DataType.BOOLEAN)):
            dev.add(self.node, self.aliases, key, datatype).value = False
        self.node.metrics[REBIRTH].alias = 0  # no alias (3.0 5.17): a host sends it by name
        for key, (datatype, value) in self._health().items():
            dev.add(self.node, self.aliases, key, datatype).value = value
        dev.declare(self.node, self.aliases, ())

    def _health(self) -> dict[str, tuple[DataType, Any]]:
        """The runtime's health metrics and the node's own counts of coalesced or ignored commands."""
        counts = {f"Health/{label}": (DataType.INT64, self.counts.get(key, 0)) for key, label in COMMAND_COUNTS.items()}
        return {**self.health(), **counts}

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.s.health_interval_s)
            if self.live:
                now = self._health()
                changes = {k: v for k, (_, v) in now.items() if self.node.metrics[k].value != v}
                if changes:
                    self._publish_changes(self.node, self._update(self.node, changes, {}, now_ms()))
