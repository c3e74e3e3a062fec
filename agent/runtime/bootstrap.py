"""Bootstrap: builds every part of one agent from the validated config, registers the extension
points (agent/extensions.py) and hands the parts to the :class:`Runtime`; nothing is created later.

Call it on the running event loop (the MQTT sessions bind to it). The parts call each other
both ways (the outbox reports drops through the publisher that feeds it; the instances report
their state through the session that publishes their births); the few calls that point at a
part built further down go through a closure, marked "built below", which runs only once the
agent runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.agent.alarms.service import AlarmList, AuditLog
from edge_agent.agent.clock_watch import ClockWatch
from edge_agent.agent.config.layers import PushedLayer
from edge_agent.agent.config.registry import Registry
from edge_agent.agent.config.schema import Config
from edge_agent.agent.extensions import Extensions
from edge_agent.agent.history.service import History
from edge_agent.agent.maintenance.service import Maintenance
from edge_agent.agent.messaging.mqtt_session import Handler, MqttSession, SessionOptions, read_password
from edge_agent.agent.messaging.outbox import MemoryOutbox, Outbox, Priority
from edge_agent.agent.messaging.publisher import Publisher, Topics
from edge_agent.agent.messaging.seq_store import SeqStore
from edge_agent.agent.remote.authority import Actor, record_action
from edge_agent.agent.remote.commands import AgentCommandHandler, Commands, RefusalThrottle
from edge_agent.agent.remote.config_push import RemoteConfig
from edge_agent.agent.runtime.agent_events import AgentEvents
from edge_agent.agent.runtime.control import AgentControl
from edge_agent.agent.runtime.instances import Instances, RunningConfig
from edge_agent.agent.runtime.process_isolation import build_driver
from edge_agent.agent.runtime.reporting import Reporter, StatusMessages
from edge_agent.agent.runtime.runtime import Remote, Runtime
from edge_agent.agent.runtime.sd_notify import Notifier
from edge_agent.drivers.lanes import Lanes
from edge_agent.plugins.contract import AgentInfo


def build_runtime(
    config: Config,
    registry: Registry,
    *,
    config_path: Path | None = None,
    url_override: str | None = None,
    file_config: Config | None = None,
    layer: PushedLayer | None = None,
) -> Runtime:
    """One agent, ready to ``await runtime.run()``; ``file_config``/``layer``: the two config layers."""
    state_dir = Path(config.agent.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    extensions, topics, running = Extensions(), Topics(config.mqtt.prefix, config.agent_id), RunningConfig(config)
    seqs, outbox, publisher, agent_events = _messaging(config, state_dir, topics, extensions)
    lanes = Lanes(config.agent.max_lane_threads)
    watch = _clock_watch(config, publisher, extensions)
    maintenance = _maintenance(state_dir, publisher, running, extensions, watch)
    instances = _instances(config, running, publisher, lanes, extensions, maintenance, lambda: reporter)  # built below
    control = AgentControl(
        instances, registry, file_config=file_config or config, layer=layer or PushedLayer(), config_path=config_path
    )
    messages = StatusMessages(control, publisher, topics, lanes)
    history = _history(config, state_dir, extensions, running, publisher)
    alarm_list, audit_log = _alarm_list_and_audit(state_dir, extensions, publisher, outbox, topics)
    parts = (maintenance, history, alarm_list, audit_log)
    agent_commands = {name: part for part in parts if part is not None for name in part.COMMANDS}
    remote = _remote(config, control, topics, publisher, outbox, agent_events, agent_commands)
    url = url_override or config.mqtt.url
    session = MqttSession(_session_options(config, url, topics, messages, remote, agent_events), outbox)
    reporter = Reporter(messages, session, outbox, instances)
    if config.sparkplug.enabled:
        writes = remote.commands if remote is not None else _dcmd_commands(config, control, agent_events)
        node = _add_sparkplug(config, state_dir, extensions, session, reporter, writes)
        alarm_list.replay_to.append(node)  # the active alarms again in each DBIRTH's wake (after the node's)
        extensions.listeners.append(alarm_list)
    return Runtime(
        config=config,
        url=url,
        seqs=seqs,
        outbox=outbox,
        publisher=publisher,
        lanes=lanes,
        agent_events=agent_events,
        instances=instances,
        control=control,
        remote=remote,
        session=session,
        messages=messages,
        extensions=extensions,
        notifier=Notifier(),
    )


def _alarm_list_and_audit(
    state_dir: Path, extensions: Extensions, publisher: Publisher, outbox: Outbox, topics: Topics
) -> tuple[AlarmList, AuditLog]:
    """The alarm list and the audit trail (agent/alarms): outputs and services, retained on
    ``{p}/{agent}/alarms`` and ``{p}/{agent}/audit``."""

    def retained(suffix: str, d: dict[str, Any]) -> None:
        outbox.put(publisher.message(f"{topics.base}/{suffix}", d, retain=True, priority=Priority.STATE))

    parts = AlarmList(state_dir, retained), AuditLog(state_dir, retained)
    extensions.outputs.extend(parts)
    extensions.services.extend(parts)
    return parts


def _messaging(
    config: Config, state_dir: Path, topics: Topics, extensions: Extensions
) -> tuple[SeqStore, Outbox, Publisher, AgentEvents]:
    """The seq store, the outbox (its drops and faults become agent events) and the publisher."""
    seqs = SeqStore(state_dir / "seq.sqlite")
    outbox = _outbox(config, state_dir, seqs, topics, lambda: agent_events)  # built below
    publisher = Publisher(
        topics,
        seqs,
        outbox,
        single_float=config.mqtt.float_precision == "single",
        native=not config.sparkplug.enabled or config.sparkplug.native,
        extensions=extensions,
    )
    agent_events = AgentEvents(publisher)
    return seqs, outbox, publisher, agent_events


def _clock_watch(config: Config, publisher: Publisher, extensions: Extensions) -> ClockWatch:
    """Wall-clock steps become ``clock_step`` events; until it is synchronised, messages say ``tq``."""
    watch = ClockWatch(publisher.event, config.agent.clock_sync)
    publisher.clock_trusted = lambda: watch.trusted
    extensions.services.append(watch)
    return watch


def _maintenance(
    state_dir: Path, publisher: Publisher, running: RunningConfig, extensions: Extensions, watch: ClockWatch
) -> Maintenance:
    """Calibration, captures and shift reports: a publish hook, a driver wrapper and a service."""
    maintenance = Maintenance(
        state_dir,
        publisher,
        running.plugin_of,
        running.driver_keys,
        flush_s=running.config.agent.state_flush_s,
        clock_check=watch.look_for_step,
    )
    extensions.hooks.append(maintenance)  # calibration due marks, capture triggers, report tallies
    extensions.wrappers.append(maintenance)  # the driver tap: calibration and capture rings
    extensions.services.append(maintenance)
    return maintenance


def _instances(
    config: Config,
    running: RunningConfig,
    publisher: Publisher,
    lanes: Lanes,
    extensions: Extensions,
    maintenance: Maintenance,
    reporter: Callable[[], Reporter],
) -> Instances:
    """The running instances; ``reporter`` is called only once the agent runs (it is built later)."""
    return Instances(
        running,
        publisher,
        lanes,
        extensions,
        agent=AgentInfo(
            config.agent.state_dir, lambda: reporter().stats(), store=maintenance.store, recorder=maintenance.recorder
        ),
        build_driver=build_driver,  # isolate = "process": the driver runs in a supervised child
        publish_state=lambda status: reporter().publish_state(status),
        stats=lambda: reporter().stats(),
    )


def _history(
    config: Config, state_dir: Path, extensions: Extensions, running: RunningConfig, publisher: Publisher
) -> History | None:
    """On-device history (agent/history): an output, an instance listener and a service; None when off."""
    if not config.history.enabled:
        return None
    history = History(state_dir, config.history, running.declared, clock_trusted=lambda: publisher.clock_trusted())
    extensions.outputs.append(history)
    extensions.listeners.append(history)  # a stopped instance is forgotten (a push may change its values)
    extensions.services.append(history)
    return history


def _outbox(
    config: Config, state_dir: Path, seqs: SeqStore, topics: Topics, agent_events: Callable[[], AgentEvents]
) -> Outbox:
    """The spool (durable) or a memory queue; drops and faults become agent events."""
    if not config.spool.enabled:
        return MemoryOutbox(
            config.mqtt.queue_max, on_drop=lambda since, total: agent_events().spool_dropped(since, total)
        )
    from edge_agent.agent.messaging.spool import SpoolOutbox

    seqs.reserve_when_handed(eager=(topics.status, topics.config_state))
    return SpoolOutbox(
        state_dir / "spool",
        config.spool,
        seqs=seqs,
        memory_max_messages=config.mqtt.queue_max,
        on_drop=lambda since, total: agent_events().spool_dropped(since, total),
        on_fault=lambda kind, why: agent_events().spool_fault(kind, why),
    )


def _remote(
    config: Config,
    control: AgentControl,
    topics: Topics,
    publisher: Publisher,
    outbox: Outbox,
    agent_events: AgentEvents,
    agent_commands: Mapping[str, AgentCommandHandler],
) -> Remote | None:
    """Remote config and commands, built once: the session calls them, a reload resets their keys."""
    if not config.remote.enabled:
        return None

    def answer(topic: str, d: Mapping[str, Any], *, durable_seq: bool = True) -> None:
        outbox.put(publisher.message(topic, d, priority=Priority.EVENT, durable_seq=durable_seq))

    refusals = RefusalThrottle()

    def push_answered(d: dict[str, Any]) -> None:
        """Answer a push and record it in the audit trail (refusals throttled: a flood of bad pushes)."""
        answer(topics.config_result, d)
        status = str(d.get("status"))
        if status == "rejected" and not refusals.allow(time.monotonic()):
            return
        args = {k: d[k] for k in ("version", "attempted", "id", "source") if d.get(k) is not None}
        outcome = status + (f": {'; '.join(map(str, d.get('errors', [])))}" if d.get("errors") else "")
        actor = Actor("(not given)", None, "mqtt")  # a push names no person; a signed one its key
        record_action(agent_events.audit, command="config_push", actor=actor, instance=None, args=args, outcome=outcome)

    pushes = RemoteConfig(control, agent_id=config.agent_id, groups=tuple(config.agent.groups), answer=push_answered)
    commands = Commands(
        control,
        # an unknown name (cmd/<random>) must not add a seq.sqlite row (commands: this one, built now)
        answer=lambda name, d: answer(topics.cmd_result(name), d, durable_seq=commands.knows(name)),
        chunk_bytes=config.remote.capture_chunk_bytes,
        agent_commands=agent_commands,
        audit=agent_events.audit,
    )
    # a reload (SIGHUP, cmd reload) reads the key files again: a key restored with its old mtime
    control.on_reload += [pushes.reset_keys, commands.authority.keys.reset]
    return Remote(pushes, commands)


def _dcmd_commands(config: Config, control: AgentControl, agent_events: AgentEvents) -> Commands:
    """The commands Sparkplug DCMD writes go through when [remote] is off (no answers to send)."""
    return Commands(
        control, answer=lambda name, d: None, chunk_bytes=config.remote.capture_chunk_bytes, audit=agent_events.audit
    )


def _subscriptions(config: Config, topics: Topics, remote: Remote | None) -> dict[str, Handler]:
    if remote is None:
        return {}
    subs: dict[str, Handler] = {
        topics.config_set: remote.pushes.on_push,
        topics.config_desired: remote.pushes.on_desired,
    }
    for group in config.agent.groups:
        subs[topics.group_desired(group)] = remote.pushes.on_desired
    subs[topics.cmd] = remote.commands.on_command
    return subs


def _session_options(
    config: Config, url: str, topics: Topics, messages: StatusMessages, remote: Remote | None, agent_events: AgentEvents
) -> SessionOptions:
    m = config.mqtt
    return SessionOptions(
        url=url,
        client_id=f"edge-agent-{config.agent_id}",
        keepalive_s=m.keepalive_s,
        username=m.username,
        password=read_password(m.password_file),
        ca_file=m.ca_file,
        cert_file=m.cert_file,
        key_file=m.key_file,
        max_inflight=m.max_inflight,
        reconnect_min_s=m.reconnect_min_s,
        reconnect_max_s=m.reconnect_max_s,
        will_topic=topics.status,
        will_payload=messages.last_will,
        birth=messages.birth,
        subscriptions=_subscriptions(config, topics, remote),
        inbound_rate_per_s=config.remote.inbound_per_s,
        inbound_burst=config.remote.inbound_burst,
        on_shed=agent_events.inbound_shed,
    )


def _add_sparkplug(
    config: Config,
    state_dir: Path,
    extensions: Extensions,
    session: MqttSession,
    reporter: Reporter,
    writes: Commands,
) -> Any:
    """The Sparkplug B edge node beside (or instead of) the native topics: an output with its own session."""
    from edge_agent.agent.sparkplug.node import SparkplugNode

    async def write(instance: str, key: str, value: Any) -> Any:
        """A DCMD write goes the way cmd/write goes (allow_writes, writable, limits, the gate, the audit)."""
        req = {"instance": instance, "args": {"tag": key, "value": value}}
        return await writes.run("write", req, source="sparkplug")

    node = SparkplugNode(
        config.sparkplug,
        agent_id=config.agent_id,
        state_dir=state_dir,
        session=session.opts,  # the very options of the native session, never a second build
        health=reporter.sparkplug_health,
        write=write,
        clock_trusted=lambda: reporter.messages.publisher.clock_trusted(),
    )
    extensions.outputs.append(node)
    extensions.listeners.append(node)
    extensions.services.append(node)
    return node
