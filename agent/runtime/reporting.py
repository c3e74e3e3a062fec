"""What the agent reports about itself: the retained status (birth and last will) and
config/state, the counters (``stats``) and the Sparkplug node's health metrics."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from edge_agent.agent import __version__
from edge_agent.agent.messaging.mqtt_session import MqttSession
from edge_agent.agent.messaging.outbox import Message, Outbox, Priority
from edge_agent.agent.messaging.publisher import Publisher, Topics, now_ms
from edge_agent.agent.runtime.control import AgentControl
from edge_agent.agent.runtime.instances import Instances
from edge_agent.agent.runtime.supervisor import State
from edge_agent.drivers.lanes import Lanes
from edge_agent.plugins.contract import AgentStats

THREAD_KEYS = ("threads", "lane_threads", "max_lane_threads", "lanes")


class StatusMessages:
    """Builds the retained status and config/state messages, fresh each time they are sent."""

    def __init__(self, control: AgentControl, publisher: Publisher, topics: Topics, lanes: Lanes) -> None:
        self.control = control
        self.publisher = publisher
        self.topics = topics
        self.lanes = lanes
        self.started_ms = now_ms()
        self.started_mono = time.monotonic()
        self.first_publish_s: float | None = None  # start to the first birth (docs/performance.md)

    def status(self, state: str, reason: str = "") -> Message:
        """``{p}/{agent}/status``: online/offline, versions, host, threads."""
        d: dict[str, Any] = {
            "state": state,
            "version": __version__,
            "config_version": self.control.layer.version,
            "config_hash": self.control.file_config.hash,
            "instances_hash": self.control.hash,
            "groups": list(self.control.config.agent.groups),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started_ms,
            "threads": self._threads(),
        }
        if reason:
            d["reason"] = reason
        return self.publisher.message(self.topics.status, d, retain=True, priority=Priority.STATE)

    def _threads(self) -> dict[str, Any]:
        lanes = self.lanes.stats()
        return {k: lanes[k] for k in THREAD_KEYS} | {"stuck": len(lanes["stuck"])}

    def last_will(self) -> bytes:
        """The Will's payload: offline, lost (the broker sends it when the connection dies)."""
        return self.status("offline", "lost").payload

    def config_state(self) -> Message:
        """``{p}/{agent}/config/state``: what runs and the last result."""
        return self.publisher.message(
            self.topics.config_state, self.control.state(), retain=True, priority=Priority.STATE
        )

    def birth(self) -> list[Message]:
        """Published first on every connect: the online status and the config state."""
        if self.first_publish_s is None:
            self.first_publish_s = time.monotonic() - self.started_mono
        return [self.status("online"), self.config_state()]


class Reporter:
    """Republishes the retained state on a change and counts what the agent did."""

    def __init__(self, messages: StatusMessages, session: MqttSession, outbox: Outbox, instances: Instances) -> None:
        self.messages = messages
        self.session = session
        self.outbox = outbox
        self.instances = instances

    def publish_state(self, status: bool = True) -> None:
        """Republish the retained status (config version) and config/state after a change.

        Straight to the client, coalesced per topic and rate-limited by the session (a flood of
        rejections), built when sent; only while connected: a state message waiting in the spool
        would reach the broker after the next birth and overwrite the newer retained state with
        an older one. While disconnected nothing is lost: every (re)connect publishes the birth."""
        if status:
            self.session.publish_latest(self.messages.topics.status, lambda: self.messages.status("online"))
        self.session.publish_latest(self.messages.topics.config_state, self.messages.config_state)

    def stats(self) -> AgentStats:
        """Counters for the system plugin and the status command."""
        s = self.session.stats
        return {
            "uptime_s": round(time.monotonic() - self.messages.started_mono, 1),
            "queue_depth": self.outbox.depth(),
            "inflight": self.session.inflight(),
            "sent": s.sent,
            "bytes_sent": s.bytes_sent,
            "reconnects": s.reconnects,
            "connected": self.session.connected.is_set(),
            "dropped": self.outbox.dropped(),
            "created": self.messages.publisher.created,
            "threads": self.messages.lanes.stats(),
            "instances": self.instances.instance_stats(),
        }

    def sparkplug_health(self) -> dict[str, Any]:
        """The Sparkplug node's own metrics (NBIRTH, then NDATA on change)."""
        from edge_agent.agent.sparkplug.payload import DataType  # protobuf only when Sparkplug is on

        config = self.instances.config
        states = self.instances.states()
        return {
            "Properties/Agent Version": (DataType.STRING, __version__),
            "Properties/Config Version": (DataType.INT64, config.version),
            "Properties/Config Hash": (DataType.STRING, config.hash),
            "Properties/Host": (DataType.STRING, socket.gethostname()),
            "Health/Instances": (DataType.INT64, len(states)),
            "Health/Instances Running": (DataType.INT64, sum(st in (State.RUNNING, State.DEGRADED) for st in states)),
            "Health/Instances Failing": (DataType.INT64, sum(st in (State.BACKOFF, State.HUNG) for st in states)),
            "Health/Native Connected": (DataType.BOOLEAN, self.session.connected.is_set()),
            "Health/Native Queue": (DataType.INT64, self.outbox.depth()),
            # false until the wall clock is synchronised: every timestamp of the node is then suspect
            "Health/Clock Synchronised": (DataType.BOOLEAN, self.messages.publisher.clock_trusted()),
        }
