"""The MQTT session: paho-mqtt 2.x driven from the asyncio loop (no network thread).

paho's socket hooks register its socket with the event loop (``add_reader``/``add_writer``), so
every paho callback runs on the loop thread and no lock is ever shared with another thread. Why:
with paho's own network thread, its callbacks run while paho holds its internal locks; a callback
waiting for one of our locks while another thread holds that lock and calls ``publish()``
deadlocks both, silently and only sometimes (seen in a prototype: status published, then no data
ever again; docs/architecture.md, threads). Only the blocking TCP/TLS connect runs in a worker thread.

Delivery: messages come from an Outbox; at most ``max_inflight`` are unacknowledged at once;
a PUBACK acknowledges the message in the outbox. On a reconnect paho resends its in-flight
QoS 1 messages itself (at least once). Every ``publish()`` result is checked: a message paho did
not take goes back to the head of the outbox (never acknowledged by another message's PUBACK), and
the send loop waits a moment (back-pressure: producers' data waits in the outbox or the spool).
Retained state (status, config/state) goes through ``publish_latest``: per topic the latest wins,
at most ``retained_per_s`` per topic beyond a burst. Inbound messages are shed
before they can stall the loop: a token bucket per subscription, a bound on handlers running at
once, every shed message counted and reported (``on_shed``). See docs/security.md.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from edge_agent.agent.backoff import backoff_delays
from edge_agent.agent.messaging.inbound import Handler, InboundGate, ShedReport, TokenBucket
from edge_agent.agent.messaging.outbox import Message, Outbox
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("agent.mqtt")


@dataclass
class SessionStats:
    connects: int = 0
    reconnects: int = 0
    sent: int = 0
    bytes_sent: int = 0
    received: int = 0
    last_error: str = ""
    connected_since: float | None = None
    refused: int = 0  # publishes paho did not take (requeued, never lost)
    shed: dict[str, int] = field(default_factory=dict)  # inbound messages dropped, per subscription
    coalesced: int = 0  # retained state republishes folded into a later one


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Parse mqtt://HOST[:PORT] or mqtts://HOST[:PORT]."""
        u = urlparse(url)
        tls = u.scheme in ("mqtts", "ssl")
        return cls(u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883), tls)


@dataclass
class SessionOptions:
    url: str
    client_id: str
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    max_inflight: int = 100
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    will_topic: str | None = None
    will_payload: Callable[[], bytes] | None = None
    birth: Callable[[], list[Message]] | None = None  # published first on every connect
    on_connecting: Callable[[mqtt.Client], None] | None = None  # before every CONNECT (Sparkplug: Will per bdSeq)
    subscriptions: dict[str, Handler] = field(default_factory=dict)
    inbound_rate_per_s: float = 50.0  # per subscription; a flood beyond it is shed, counted
    inbound_burst: int = 100
    max_handlers: int = 16  # per subscription, running at once (a capture or an apply takes seconds)
    retained_per_s: float = 5.0  # per retained state topic (a flood of rejections republishes it)
    retained_burst: int = 20
    on_shed: ShedReport | None = None  # (since last, total), the first at once, then <= every 10 s
    # subscriptions on a second connection: the PUBACKs of the data never queue behind an inbound flood
    separate_inbound: bool = True


def set_nodelay(sock: Any) -> None:
    """Disable Nagle: paho writes small packets and waits for answers, so Nagle plus delayed
    ACKs would add 40-80 ms to every round trip (PUBACK, command answers)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # not a TCP socket (or a TLS wrapper without it): nothing to tune


class MqttSession:
    """Async context manager owning the paho client, the connect loop and the sender."""

    def __init__(self, opts: SessionOptions, outbox: Outbox) -> None:
        self.opts = opts
        self.outbox = outbox
        self.stats = SessionStats()
        self.connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._inflight: dict[int, tuple[Message, bool]] = {}  # mid -> (message, from the outbox)
        self._window = asyncio.Semaphore(opts.max_inflight)
        self._tasks: list[asyncio.Task[None]] = []
        self.gate = InboundGate(
            opts.subscriptions,
            rate_per_s=opts.inbound_rate_per_s,
            burst=opts.inbound_burst,
            max_handlers=opts.max_handlers,
            on_shed=opts.on_shed,
            counts=self.stats.shed,
        )
        self._inbound_down = asyncio.Event()
        self._latest_builds: dict[str, Callable[[], Message]] = {}  # retained topic -> builder of its newest state
        self._latest_rate: dict[str, TokenBucket] = {}  # per retained state topic
        self._latest_tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False
        self.client = self._make_client(opts.client_id, will=True)
        self.inbound_client: mqtt.Client | None = None  # the subscriptions' own connection
        if opts.separate_inbound and opts.subscriptions:
            self.inbound_client = self._make_client(f"{opts.client_id}-in", will=False)
            self.inbound_client.on_connect = self._on_inbound_connect
            self.inbound_client.on_disconnect = self._on_inbound_disconnect

    def _make_client(self, client_id: str, *, will: bool) -> mqtt.Client:
        o = self.opts
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        c.max_inflight_messages_set(o.max_inflight)
        c.max_queued_messages_set(0)
        if o.username:
            c.username_pw_set(o.username, o.password)
        if Endpoint.parse(o.url).tls:
            c.tls_set(
                ca_certs=o.ca_file,
                certfile=o.cert_file,
                keyfile=o.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will and o.will_topic and o.will_payload:
            c.will_set(o.will_topic, o.will_payload(), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_register_write
        c.on_socket_unregister_write = self._on_unregister_write
        return c

    # --- socket hooks: may fire on the connect worker thread, so hop to the loop ---------
    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` now when on the loop thread, else schedule it there."""
        if self._loop_thread == threading.get_ident():
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        set_nodelay(sock)
        self._soon(self._loop.add_reader, sock.fileno(), client.loop_read)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._soon(self._loop.remove_reader, fd)
            self._soon(self._loop.remove_writer, fd)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._soon(self._loop.add_writer, sock.fileno(), client.loop_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._soon(self._loop.remove_writer, fd)

    # --- paho callbacks: run on the loop thread --------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self.stats.last_error = f"broker refused connection: {rc}"
            log.error("%s", self.stats.last_error)
            self._disconnected.set()
            return
        self.stats.connects += 1
        self.stats.connected_since = time.monotonic()
        log.info("connected to %s", self.opts.url)
        try:
            births = self.opts.birth() if self.opts.birth else []
        except Exception:  # a birth that cannot be built must not keep the session from subscribing
            log.exception("cannot build the birth messages")
            births = []
        for msg in births:
            self._track(client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain), msg, outbox=False)
        if self.inbound_client is None:
            for topic in self.opts.subscriptions:
                client.subscribe(topic, qos=1)
        self.connected.set()
        self.outbox.link(True)

    def _on_inbound_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            log.error("broker refused the subscriptions' connection: %s", rc)
            self._inbound_down.set()
            return
        for topic in self.opts.subscriptions:
            client.subscribe(topic, qos=1)

    def _on_inbound_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        self._inbound_down.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if self.connected.is_set():
            log.warning("disconnected from broker: %s", rc)
        self.connected.clear()
        self._disconnected.set()
        self.outbox.link(False)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any = None) -> None:
        entry = self._inflight.pop(mid, None)
        if entry is not None and entry[1]:  # from the outbox: it held a window slot
            self.outbox.ack(entry[0])
            self._window.release()

    def _track(self, info: Any, msg: Message, *, outbox: bool) -> bool:
        """Remember a QoS 1 publish paho took (sent, or queued for the next connection) until its
        PUBACK; False when paho refused it (rc 15: its queue or message ids are exhausted)."""
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.stats.refused += 1
            log.warning("publish to %s refused by the client (rc %s): kept to retry", msg.topic, info.rc)
            return False
        if msg.qos > 0:
            if info.mid in self._inflight:  # cannot happen while paho checks its own ids: never ack the wrong one
                log.error("message id %d reused while in flight: %s", info.mid, msg.topic)
            self._inflight[info.mid] = (msg, outbox)
        return True

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """To the inbound gate (rate limits, shedding); never raises into paho."""
        self.stats.received += 1
        self.gate.deliver(message.topic, bytes(message.payload))

    # --- tasks -------------------------------------------------------------------------
    async def __aenter__(self) -> MqttSession:
        self._tasks = [
            self._loop.create_task(self._connect_loop(self.client, self._disconnected), name="mqtt-connect"),
            self._loop.create_task(self._misc_loop(), name="mqtt-misc"),
            self._loop.create_task(self._send_loop(), name="mqtt-send"),
        ]
        if self.inbound_client is not None:
            inbound = self._connect_loop(self.inbound_client, self._inbound_down)
            self._tasks.append(self._loop.create_task(inbound, name="mqtt-connect-inbound"))
        return self

    async def _connect_loop(self, client: mqtt.Client, down: asyncio.Event) -> None:
        """Connect ``client``, wait until ``down``, back off, reconnect; until closing."""
        ep = Endpoint.parse(self.opts.url)
        delays = backoff_delays(self.opts.reconnect_min_s, self.opts.reconnect_max_s)
        main = client is self.client
        first = True
        while not self._closing:
            down.clear()
            try:
                if main and self.opts.on_connecting is not None:
                    self.opts.on_connecting(client)
                if first:
                    await asyncio.to_thread(client.connect, ep.host, ep.port, self.opts.keepalive_s)
                else:
                    self.stats.reconnects += main
                    await asyncio.to_thread(client.reconnect)
                first = False
                up_since = time.monotonic()
                await down.wait()
                if time.monotonic() - up_since > 10:
                    delays = backoff_delays(self.opts.reconnect_min_s, self.opts.reconnect_max_s)
            except (OSError, ssl.SSLError, ValueError) as exc:
                self.stats.last_error = f"cannot connect to {ep.host}:{ep.port}: {exc}"
                log.warning("%s", self.stats.last_error)
                first = first and not isinstance(exc, ValueError)
            if not self._closing:
                await self._pause(next(delays), main)

    async def _pause(self, delay_s: float, main: bool) -> None:
        """Back off before the next attempt. While the broker is away, the subscriptions' connection
        tries again as soon as the main one is back instead of after its own backoff (up to
        ``reconnect_max_s``): its session is clean, so a command or push sent before it subscribes
        again is lost without an answer (bench.soak: a restart and a push 6-14 s after a 50-s outage)."""
        if main or self.connected.is_set():
            await asyncio.sleep(delay_s)
            return
        try:
            await asyncio.wait_for(self.connected.wait(), delay_s)
        except TimeoutError:
            pass  # the backoff ran out first: try anyway

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.client.loop_misc()
            if self.inbound_client is not None:
                self.inbound_client.loop_misc()

    async def _send_loop(self) -> None:
        while True:
            await self._window.acquire()
            await self.connected.wait()  # take nothing from the outbox during an outage (seq reservation)
            msg = await self.outbox.get()
            await self.connected.wait()
            if not self._publish(msg):
                self.outbox.requeue(msg)  # first again; the producers' data waits in the outbox
                await asyncio.sleep(0.05)

    def _publish(self, msg: Message) -> bool:
        """Hand one message to paho inside the window; False (window slot released) if refused."""
        info = self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        if not self._track(info, msg, outbox=True):
            self._window.release()
            return False
        self.stats.sent += 1
        self.stats.bytes_sent += len(msg.payload) + len(msg.topic) + 4
        if msg.qos == 0:
            self.outbox.ack(msg)
            self._window.release()
        return True

    def publish_latest(self, topic: str, build: Callable[[], Message]) -> None:
        """Publish retained state (status, config/state): at once while the topic is within its
        rate (``retained_per_s``, burst ``retained_burst``: normal changes never wait), else the
        newest ``build`` waits for the next token and replaces any older one (coalesced: built only
        when sent, so it uses no seq number). While disconnected nothing is sent: every connect
        publishes the birth."""
        self._latest_builds[topic] = build
        if topic in self._latest_tasks:
            self.stats.coalesced += 1
            return
        bucket = self._latest_rate.get(topic)
        if bucket is None:
            bucket = self._latest_rate[topic] = TokenBucket(self.opts.retained_per_s, self.opts.retained_burst)
        if bucket.take():
            self._send_latest(topic)
        else:
            task = self._loop.create_task(self._send_later(topic, bucket), name=f"mqtt-state:{topic}")
            self._latest_tasks[topic] = task

    async def _send_later(self, topic: str, bucket: TokenBucket) -> None:
        try:
            while not bucket.take():
                await asyncio.sleep(bucket.wait_s())
            self._send_latest(topic)
        finally:
            self._latest_tasks.pop(topic, None)

    def _send_latest(self, topic: str) -> None:
        build = self._latest_builds.pop(topic)
        if not self.connected.is_set():
            return
        try:
            msg = build()
        except Exception:
            log.exception("cannot build the state for %s", topic)
            return
        # outside the window: at most one per topic and interval, so paho's ids can never wrap onto one in flight
        self._track(self.client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain), msg, outbox=False)

    def inflight(self) -> int:
        return len(self._inflight)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty and acknowledged, or the timeout; True if drained."""
        deadline = time.monotonic() + timeout_s
        while self.outbox.depth() > 0 and time.monotonic() < deadline:
            if not self.connected.is_set():
                return False
            await asyncio.sleep(0.02)
        return self.outbox.depth() == 0

    async def close(self, *, final: Message | None = None, timeout_s: float = 1.0) -> None:
        """Publish ``final`` (the offline status), wait briefly for its ack, then disconnect."""
        self._closing = True
        if final is not None and self.connected.is_set():
            info = self.client.publish(final.topic, final.payload, qos=final.qos, retain=final.retain)
            deadline = time.monotonic() + timeout_s
            while not info.is_published() and time.monotonic() < deadline and self.connected.is_set():
                await asyncio.sleep(0.01)
        tasks = [*self._tasks, *self.gate.running(), *self._latest_tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.client.disconnect()
        if self.inbound_client is not None:
            self.inbound_client.disconnect()

    async def __aexit__(self, *exc: object) -> None:
        if not self._closing:
            await self.close()


def read_password(path: str | None) -> str | None:
    """Read a password file (first line, stripped); None when no file is configured."""
    if not path:
        return None
    from edge_agent.agent.runtime.logging_setup import register_secret

    lines = Path(path).read_text(encoding="utf-8").splitlines()
    password = lines[0].strip() if lines else ""
    if password:
        register_secret(password)  # never let it reach a log line
    return password
