"""The ``system`` plugin: health of the edge box and of the agent itself.

Needs no driver. Host figures come from edge_agent.drivers.host_health; agent counters (queue depth, messages and
bytes sent, reconnects, drops) come from the runtime through ``ctx.agent.stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge_agent.drivers import host_health as host
from edge_agent.drivers.contract import DType, ValueSpec
from edge_agent.plugins.contract import AgentStats, Options, Plugin, PluginContext, PluginSpec


class SystemOptions(Options):
    disk_path: str = ""  # file system to watch; default: the agent's state_dir
    include_instances: bool = False  # add per-instance poll/error counters


def rates(prev: dict[str, Any], cur: dict[str, Any]) -> dict[str, float]:
    """CPU % of the host (all cores) and of the agent (% of one core) between two snapshots."""
    out: dict[str, float] = {}
    elapsed = cur["mono"] - prev["mono"]
    if prev["cpu"] and cur["cpu"] and cur["cpu"][1] > prev["cpu"][1]:
        out["cpu_pct"] = round(100.0 * (cur["cpu"][0] - prev["cpu"][0]) / (cur["cpu"][1] - prev["cpu"][1]), 1)
    if elapsed > 0:
        out["agent_cpu_pct"] = round(100.0 * (cur["proc_cpu_s"] - prev["proc_cpu_s"]) / elapsed, 2)
    return out


def host_values(snap: dict[str, Any]) -> dict[str, Any]:
    """Flatten a host snapshot into published fields (absent sensors omitted)."""
    d: dict[str, Any] = {"load_1m": round(snap["load_1m"], 2), "rss_mb": round(snap["rss_mb"], 1)}
    if snap["temp_c"] is not None:
        d["cpu_temp_c"] = round(snap["temp_c"], 1)
    mem = snap["mem"]
    if "MemTotal" in mem and "MemAvailable" in mem:
        d["mem_available_mb"] = round(mem["MemAvailable"], 1)
        d["mem_used_pct"] = round(100.0 * (1 - mem["MemAvailable"] / mem["MemTotal"]), 1)
    if snap["disk"] is not None:
        d["disk_free_mb"] = round(snap["disk"][0], 1)
        d["disk_free_pct"] = round(snap["disk"][1], 1)
    return d


def agent_values(stats: AgentStats, include_instances: bool) -> dict[str, Any]:
    """Select the agent counters that go into the message."""
    d: dict[str, Any] = {
        k: stats[k] for k in ("uptime_s", "queue_depth", "sent", "bytes_sent", "reconnects", "connected") if k in stats
    }
    if "dropped" in stats:
        d["dropped"] = sum(stats["dropped"].values())
    if include_instances and "instances" in stats:
        d["instances"] = {
            n: {"polls": s["polls"], "errors": s["errors"], "skipped": s["skipped_ticks"]}
            for n, s in stats["instances"].items()
        }
    return d


class SystemPlugin(Plugin):
    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.path = ctx.options.disk_path or ctx.agent.state_dir or "/"
        self.stats_fn = ctx.agent.stats
        self.prev: dict[str, Any] | None = None

    async def poll(self) -> None:
        snap = await self.ctx.call(host.snapshot, self.path)
        values = host_values(snap)
        if self.prev is not None:
            values.update(rates(self.prev, snap))
        self.prev = snap
        if self.stats_fn is not None:
            values.update(agent_values(self.stats_fn(), self.ctx.options.include_instances))
        self.ctx.emit(values)


F32, INT = DType.FLOAT32, DType.INT
HOST_VALUES = (
    ValueSpec("load_1m", F32, "", "1-minute load average"),
    ValueSpec("cpu_pct", F32, "%", "host CPU use over the last interval, all cores"),
    ValueSpec("cpu_temp_c", F32, "degC", "SoC temperature (absent without a thermal zone)"),
    ValueSpec("mem_available_mb", F32, "MB", "host memory available"),
    ValueSpec("mem_used_pct", F32, "%", "host memory used"),
    ValueSpec("disk_free_mb", F32, "MB", "free space of the state_dir file system"),
    ValueSpec("disk_free_pct", F32, "%", "free space of the state_dir file system"),
    ValueSpec("rss_mb", F32, "MB", "the agent's resident memory"),
    ValueSpec("agent_cpu_pct", F32, "%", "the agent's CPU use over the last interval, % of one core"),
    ValueSpec("uptime_s", DType.FLOAT64, "s", "since the agent started"),
    ValueSpec("queue_depth", INT, "", "messages waiting for the broker's acknowledgement"),
    ValueSpec("sent", INT, "", "messages published since start"),
    ValueSpec("bytes_sent", INT, "B", "bytes published since start (with topics)"),
    ValueSpec("reconnects", INT, "", "broker reconnects since start"),
    ValueSpec("connected", DType.BOOL, "", "the session is connected now"),
    ValueSpec("dropped", INT, "", "messages dropped by the outbox/spool bound since start"),
)
INSTANCE_VALUES = (
    ValueSpec("instances.*.polls", INT, "", "polls of each instance since start"),
    ValueSpec("instances.*.errors", INT, "", "errors of each instance since start"),
    ValueSpec("instances.*.skipped", INT, "", "ticks each instance skipped (slow polls)"),
)


def declared(o: SystemOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    """Host and agent figures; per-instance counters with ``include_instances``."""
    return [*HOST_VALUES, *(INSTANCE_VALUES if o.include_instances else ())]


SPEC = PluginSpec(
    name="system",
    factory=SystemPlugin,
    options=SystemOptions,
    requires=None,
    description="Health of the edge box and the agent: CPU, temperature, memory, disk, queue, traffic",
    values=declared,
)
