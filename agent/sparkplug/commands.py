"""Commands to the edge node: NCMD (Rebirth, Next Server), DCMD (tag writes), and the primary
host's STATE; a part the SparkplugNode owns (composed, not a mixin), kept apart so each file stays small."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from edge_agent.agent.bounds import MAX_SAFE_INT, int_in, short_repr
from edge_agent.agent.clock import now_ms
from edge_agent.agent.sparkplug.payload import DataType, Payload, get_value

if TYPE_CHECKING:
    from edge_agent.agent.sparkplug.node import SparkplugNode

log = logging.getLogger("agent.sparkplug")

REBIRTH = "Node Control/Rebirth"
NEXT_SERVER = "Node Control/Next Server"
Writer = Callable[[str, str, Any], Awaitable[Any]]  # (instance, key, value) -> result
REBIRTH_MIN_INTERVAL_S = 2.0  # one Rebirth answered at once, later ones coalesced into one per interval
NEXT_SERVER_MIN_INTERVAL_S = 10.0  # a reconnect (NDEATH, births) at most this often; more are counted
STATE_MAX_AHEAD_MS = 60_000  # a STATE timestamp counts at most this far beyond our clock (no wedge)
STATE_REFUSE_AHEAD_MS = 600_000  # a STATE further ahead than this is a forgery or a broken clock: ignored
MAX_CMD_METRICS = 64  # metrics of one NCMD/DCMD acted on; the rest are refused with one event
MAX_CMD_BYTES = 256 * 1024  # an NCMD/DCMD beyond this is not decoded
MAX_STATE_BYTES = 4096  # a STATE is a 40-byte JSON object


def parse_state(payload: bytes) -> tuple[bool, int]:
    """``{"online": bool, "timestamp": ms}`` of a STATE message; raise ValueError saying why not."""
    if len(payload) > MAX_STATE_BYTES:
        raise ValueError(f"{len(payload)} bytes (a STATE is a small JSON object)")
    try:
        state = json.loads(payload, parse_constant=_no_constant)
    except (RecursionError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {type(exc).__name__}") from exc
    if not isinstance(state, dict):
        raise ValueError("not a JSON object")
    online, ts = state.get("online"), state.get("timestamp")
    if not isinstance(online, bool):
        raise ValueError("online: must be true or false")
    if not isinstance(ts, int) or not int_in(ts, 0, MAX_SAFE_INT):
        raise ValueError(f"timestamp: must be an integer 0..{MAX_SAFE_INT} (ms since the epoch)")
    return online, ts


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class NodeCommands:
    """What the node does when told something over MQTT; it acts on the node that owns it."""

    def __init__(self, edge_node: SparkplugNode, write: Writer) -> None:
        self.edge_node = edge_node
        self.write = write
        self._rebirth_at = -1e18  # monotonic time of the last answered Rebirth request
        self._rebirth_pending = False
        self._next_server_at = -1e18

    def _metrics_of(self, payload: bytes) -> list[Any]:
        if len(payload) > MAX_CMD_BYTES:
            raise ValueError(f"{len(payload)} bytes exceed {MAX_CMD_BYTES}")
        p = Payload()
        p.ParseFromString(payload)
        return list(p.metrics)

    def on_ncmd(self, topic: str, payload: bytes) -> None:
        """NCMD: Rebirth or Next Server; anything else is refused with one event."""
        try:
            metrics = self._metrics_of(payload)
        except Exception as exc:  # protobuf raises DecodeError and friends
            log.warning("sparkplug: NCMD not decodable: %s", exc)
            return
        by_alias = {m.alias: m.name for m in self.edge_node.node if m.alias}  # 0: no alias (Rebirth)
        unsupported: list[str] = []
        for m in metrics[:MAX_CMD_METRICS]:
            name = m.name or by_alias.get(m.alias, "")
            try:
                value = get_value(m, m.datatype or DataType.BOOLEAN)
            except Exception:  # a datatype or value the codec does not know
                value = None
            if name == REBIRTH and value:
                self.request_rebirth()
            elif name == NEXT_SERVER and value:
                log.info("sparkplug: NCMD %s", NEXT_SERVER)
                self.request_next_server()
            else:
                unsupported.append(short_repr(name, 40))
        unsupported += [f"{len(metrics) - MAX_CMD_METRICS} more"] if len(metrics) > MAX_CMD_METRICS else []
        if unsupported:  # one event per message, bounded, whatever the message holds
            what = ", ".join(unsupported[:5]) + (f" and {len(unsupported) - 5} more" if len(unsupported) > 5 else "")
            self.edge_node.event("agent", "ncmd_rejected", f"unsupported node command(s) {what}", "warning", {})

    def request_rebirth(self) -> None:
        """NCMD Rebirth: the first is answered at once; more within REBIRTH_MIN_INTERVAL_S are
        coalesced into one rebirth at the end of the interval and counted (a flood of Rebirth
        requests must not turn into a flood of births)."""
        self.edge_node.counts["rebirth_requests"] = self.edge_node.counts.get("rebirth_requests", 0) + 1
        if self._rebirth_pending:
            self.edge_node.counts["rebirth_coalesced"] = self.edge_node.counts.get("rebirth_coalesced", 0) + 1
            return
        wait = self._rebirth_at + REBIRTH_MIN_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._rebirth_at = time.monotonic()
            self.edge_node.rebirth()
            return
        self.edge_node.counts["rebirth_coalesced"] = self.edge_node.counts.get("rebirth_coalesced", 0) + 1
        self._rebirth_pending = True
        asyncio.get_running_loop().call_later(wait, self._coalesced_rebirth)

    def _coalesced_rebirth(self) -> None:
        self._rebirth_pending = False
        self._rebirth_at = time.monotonic()
        log.info("sparkplug: %d Rebirth request(s) so far coalesced", self.edge_node.counts.get("rebirth_coalesced", 0))
        self.edge_node.rebirth()

    def request_next_server(self) -> None:
        """NCMD Next Server: at most once per NEXT_SERVER_MIN_INTERVAL_S, the rest counted (a flood
        must not become a reconnect storm with a full set of births each time)."""
        counts = self.edge_node.counts
        if time.monotonic() - self._next_server_at < NEXT_SERVER_MIN_INTERVAL_S:
            counts["next_server_ignored"] = counts.get("next_server_ignored", 0) + 1
            return
        self._next_server_at = time.monotonic()
        self.next_server()

    def next_server(self) -> None:
        """NDEATH, disconnect, connect again (one broker: the same): NCMD Next Server, or the host offline."""
        self.edge_node.born = False
        self.edge_node.spawn(self._leave(), "sparkplug-leave")

    async def _leave(self) -> None:
        """Publish NDEATH, wait for its PUBACK (else paho resends it in the next session), disconnect."""
        if not self.edge_node.session.connected.is_set():
            return
        info = self.edge_node.session.client.publish(
            self.edge_node.topics.ndeath, self.edge_node.ndeath_payload(), qos=1, retain=False
        )
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline and self.edge_node.session.connected.is_set():
            await asyncio.sleep(0.01)
        self.edge_node.session.client.disconnect()

    async def on_dcmd(self, topic: str, payload: bytes) -> None:
        """DCMD: write each metric through the instance's own write path (allow_writes, writable, limits)."""
        name = topic.rsplit("/", 1)[-1]
        d = self.edge_node.devices.get(name)
        try:
            metrics = self._metrics_of(payload)
        except Exception as exc:
            log.warning("sparkplug: DCMD for %s not decodable: %s", name, exc)
            return
        if len(metrics) > MAX_CMD_METRICS:
            self._refused(name, f"DCMD: {len(metrics)} metrics, only the first {MAX_CMD_METRICS} are acted on")
        for m in metrics[:MAX_CMD_METRICS]:
            md = (
                None
                if d is None
                else next((x for x in d if x.name == m.name or (not m.name and x.alias == m.alias)), None)
            )
            label = short_repr(m.name, 40) if m.name else f"alias {m.alias}"
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
        self.edge_node.event(
            device if device in self.edge_node.devices else "agent", "dcmd_rejected", why, "warning", {}
        )

    def _host_now_ms(self) -> int | None:
        """Our wall clock once synchronised; before, the host's last timestamp plus the time passed."""
        node = self.edge_node
        if node.clock_trusted():
            return now_ms()
        if not node.host_ts:
            return None
        return node.host_ts + round((time.monotonic() - node.host_ts_at_s) * 1000)

    def on_state(self, topic: str, payload: bytes) -> None:
        """spBv1.0/STATE/<host>: ``{"online": bool, "timestamp": ms}`` (3.0 JSON form). Total: no
        payload raises. A timestamp over 10 min ahead of our clock is ignored (with an event), a
        nearer one counts at most 1 min ahead: a forged future ``online: false`` cannot make every
        later real STATE look older. While our wall clock is not synchronised (a Pi at boot: its
        last shutdown's time or 1970, which would make every real host look years ahead, and the
        node never born) "now" is the host's last accepted timestamp plus the time passed since
        (monotonic), and the first STATE is taken as it comes."""
        try:
            online, ts = parse_state(payload)
        except ValueError as exc:
            log.warning("sparkplug: STATE on %s not understood (%s): %r", topic, exc, payload[:80])
            return
        if ts < self.edge_node.host_ts:
            return  # an older state than one already seen
        now = self._host_now_ms()
        if now is not None and ts > now + STATE_REFUSE_AHEAD_MS:
            why = f"STATE on {topic} ignored: its timestamp is {(ts - now) / 1000:.0f} s ahead of this clock"
            self.edge_node.event("agent", "state_refused", why, "warning", {})
            return
        # a near-future forgery holds for a minute at most
        self.edge_node.host_ts = ts if now is None else min(ts, now + STATE_MAX_AHEAD_MS)
        self.edge_node.host_ts_at_s = time.monotonic()
        was, self.edge_node.host_online = self.edge_node.host_online, online
        log.info(
            "sparkplug: primary host %s is %s", self.edge_node.s.primary_host_id, "online" if online else "offline"
        )
        if online and not self.edge_node.born:
            self.edge_node.births()
        elif not online and was and self.edge_node.born:
            self.edge_node.born = False  # from now on data goes to the store
            self.next_server()  # 3.0: NDEATH and disconnect
