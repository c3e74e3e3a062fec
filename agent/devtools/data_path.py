"""docs/data-path.png: the path of one value from a driver's read to a published message, drawn from
the code (every box names the function it stands for; a test checks that each one still exists).

Run ``python -m edge_agent.agent.devtools.data_path`` after changing the path (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "docs" / "data-path.png"

# what owns a box -> fill colour (one per package; the legend names them)
COLOURS = {
    "agent/runtime": "#dbe9f6",
    "plugins/": "#e2f0d9",
    "drivers/": "#fde9d0",
    "agent/maintenance": "#efe1f5",
    "agent/messaging": "#fff7c2",
    "agent/sparkplug": "#f9dcdc",
    "agent/history, alarms": "#d9f2ef",
    "outside the agent": "#e6e6e6",
}


@dataclass(frozen=True)
class Box:
    """One step: where it is drawn, what it is called in the code, what it does."""

    key: str
    x: float  # left, in figure units (0-100 wide)
    y: float  # bottom (0-100 high)
    w: float
    title: str
    text: str
    owner: str  # a key of COLOURS
    refs: tuple[str, ...] = ()  # "edge_agent.module:Attr.attr" the box stands for
    h: float = 6.4


L, R = 3.0, 56.0  # the two columns: the native path, and what branches off it
W = 41.0
BOXES = (
    Box("tick", L, 88, W, "supervisor: InstanceRunner._ticks", "a tick at start + k x interval_s; await plugin.poll()",
        "agent/runtime", ("edge_agent.agent.runtime.supervisor:InstanceRunner._ticks",)),
    Box("poll", L, 78, W, "plugin: Plugin.poll", "reading = await ctx.call(ctx.driver.read)",
        "plugins/", ("edge_agent.plugins.contract:Plugin.poll",)),
    Box("lane", L, 66, W, "InstanceRunner.call -> Lane.call", "the instance's own thread; a deadline per call",
        "drivers/", ("edge_agent.agent.runtime.supervisor:InstanceRunner.call", "edge_agent.drivers.lanes:Lane.call")),
    Box("tap", L, 57, W, "maintenance: DriverTap.read", "Calibrations.correct, then Recorder.feed (capture rings)",
        "agent/maintenance", ("edge_agent.agent.maintenance.driver_tap:DriverTap",
                              "edge_agent.agent.maintenance.calibration:Calibrations.correct",
                              "edge_agent.agent.maintenance.capture_store:Recorder.feed")),
    Box("read", L, 48, W, "driver: Driver.read", "one read -> Values or Waveform (+ qualities)",
        "drivers/", ("edge_agent.drivers.contract:Driver.read",)),
    Box("device", R, 48, W, "the device", "SPI/I2C chip, IIO sysfs + buffer, Modbus TCP/RTU, serial, GPIO",
        "outside the agent"),
    Box("emit", L, 37, W, "plugin computes; ctx.emit(values, quality)", "pure feature math; InstanceRunner._emit",
        "plugins/", ("edge_agent.agent.runtime.supervisor:InstanceRunner._emit",)),
    Box("data", L, 28, W, "publisher: Publisher.data", "link, hooks and outputs first, then the native message",
        "agent/messaging", ("edge_agent.agent.messaging.publisher:Publisher.data",)),
    Box("link", R, 76.5, W, "LocalLink.store", "ctx.link: other instances read the latest values",
        "agent/messaging", ("edge_agent.agent.messaging.publisher:LocalLink.store",)),
    Box("hook", R, 67.5, W, "hook: Maintenance.on_data", "calibration past due -> quality \"uncertain\"",
        "agent/maintenance", ("edge_agent.agent.maintenance.service:Maintenance.on_data",)),
    Box("history", R, 58.5, W, "outputs: History.data, AlarmList.data",
        "minute and hour aggregates; all-good data clears an instance's faults", "agent/history, alarms",
        ("edge_agent.agent.history.service:History.data", "edge_agent.agent.alarms.service:AlarmList.data")),
    Box("spb", R, 37, W, "output: SparkplugNode.data", "metric table (metric_items, aliases); DBIRTH or DDATA",
        "agent/sparkplug", ("edge_agent.agent.sparkplug.node:SparkplugNode.data",
                            "edge_agent.agent.sparkplug.device:metric_items")),
    Box("spbsend", R, 26, 20, "SparkplugNode._send", "protobuf on its own session",
        "agent/sparkplug", ("edge_agent.agent.sparkplug.node:SparkplugNode._send",)),
    Box("spbstore", R + 22, 26, 19, "SparkplugStore.put", "no primary host: kept",
        "agent/sparkplug", ("edge_agent.agent.sparkplug.store:SparkplugStore.put",)),
    Box("message", L, 19, W, "Publisher.message", "SeqStore.next(topic) + codec.encode: ts and seq fixed now",
        "agent/messaging", ("edge_agent.agent.messaging.publisher:Publisher.message",
                            "edge_agent.agent.messaging.seq_store:SeqStore.next",
                            "edge_agent.agent.messaging.codec:encode")),
    Box("outbox", L, 10, W, "outbox.put: MemoryOutbox | SpoolOutbox", "spool: SQLite WAL, group commit (spool-sync)",
        "agent/messaging", ("edge_agent.agent.messaging.outbox:MemoryOutbox.put",
                            "edge_agent.agent.messaging.spool:SpoolOutbox.put")),
    Box("send", L, 1, W, "MqttSession._send_loop", "outbox.get -> paho publish (QoS 1); PUBACK -> outbox.ack",
        "agent/messaging", ("edge_agent.agent.messaging.mqtt_session:MqttSession._send_loop",
                            "edge_agent.agent.messaging.mqtt_session:MqttSession._on_publish")),
    Box("broker", R, 1, W, "the broker",
        "{p}/{agent}/data/{instance}  and  spBv1.0/{group}/DDATA/{node}/{device}", "outside the agent"),
)  # fmt: skip

# (from, to, label, from side, to side, where along the arrow the label goes); sides: t b l r
ARROWS = (
    ("tick", "poll", "", "b", "t", 0.5),
    ("poll", "lane", "", "b", "t", 0.5),
    ("lane", "tap", "", "b", "t", 0.5),
    ("tap", "read", "", "b", "t", 0.5),
    ("read", "device", "bus I/O", "r", "l", 0.45),
    ("emit", "data", "", "b", "t", 0.5),
    ("data", "link", "1", "r", "l", 0.9),
    ("data", "hook", "2", "r", "l", 0.9),
    ("data", "history", "3", "r", "l", 0.9),
    ("data", "spb", "3", "r", "l", 0.6),
    ("data", "message", "4 (native)", "b", "t", 0.5),
    ("message", "outbox", "", "b", "t", 0.5),
    ("outbox", "send", "", "b", "t", 0.5),
    ("send", "broker", "", "r", "l", 0.5),
    ("spb", "spbsend", "live", "b", "t", 0.5),
    ("spb", "spbstore", "not live", "b", "t", 0.5),
    ("spbsend", "broker", "QoS 0", "b", "t", 0.5),
)


def resolve(ref: str) -> Any:
    """The object a box names (``module:Class.attr``); raises ImportError or AttributeError when gone."""
    module, _, path = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _anchor(b: Box, side: str, toward: Box | None = None) -> tuple[float, float]:
    """A point on a box's side; top and bottom meet a narrower box straight above or below it."""
    if side in "tb" and toward is not None and toward.w < b.w:
        return (toward.x + toward.w / 2, b.y + (b.h if side == "t" else 0))
    return {
        "t": (b.x + b.w / 2, b.y + b.h),
        "b": (b.x + b.w / 2, b.y),
        "l": (b.x, b.y + b.h / 2),
        "r": (b.x + b.w, b.y + b.h / 2),
    }[side]


def draw(out: Path = OUT) -> Path:
    """Render the figure to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    fig = plt.figure(figsize=(13, 10.5), dpi=110)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.91))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 96)
    ax.axis("off")
    fig.suptitle("One value from a driver's read to a published message", fontsize=15, x=0.02, ha="left", y=0.985)
    fig.text(0.02, 0.935, "all on the asyncio loop except the shaded part (the instance's lane thread, or an "
             "async driver awaited on the loop); numbers: the order Publisher.data calls its outputs",
             fontsize=9.5, color="#444444")  # fmt: skip
    by_key = {b.key: b for b in BOXES}
    lane_top, lane_bottom = by_key["lane"].y + by_key["lane"].h + 1.2, by_key["read"].y - 1.2
    ax.add_patch(Rectangle((1.2, lane_bottom), 45, lane_top - lane_bottom, color="#f2f2f2", zorder=0))
    ax.text(45.5, lane_top - 1.0, "lane thread", ha="right", va="center", fontsize=9, color="#777777", style="italic")
    for b in BOXES:
        ax.add_patch(FancyBboxPatch((b.x, b.y), b.w, b.h, boxstyle="round,pad=0.25,rounding_size=0.8",
                                    fc=COLOURS[b.owner], ec="#555555", lw=1.0, zorder=2))  # fmt: skip
        ax.text(b.x + 1.0, b.y + b.h * 0.66, b.title, fontsize=10.5, weight="bold", va="center", zorder=3,
                family="monospace" if "." in b.title or "_" in b.title else None)  # fmt: skip
        ax.text(b.x + 1.0, b.y + b.h * 0.27, b.text, fontsize=9, va="center", color="#333333", zorder=3)
    for a, z, label, sa, sz, at in ARROWS:
        p, q = _anchor(by_key[a], sa, by_key[z]), _anchor(by_key[z], sz, by_key[a])
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=14, lw=1.3, color="#333333", zorder=1))
        if label:
            x, y = p[0] + at * (q[0] - p[0]), p[1] + at * (q[1] - p[1])
            dx, dy = (0.7, 0.0) if sa in "tb" else (-0.4, 1.3)  # beside a vertical arrow, above a sideways one
            ax.text(x + dx, y + dy, label, fontsize=9, color="#1f4e79", va="center", ha="left",
                    bbox={"fc": "white", "ec": "none", "pad": 0.5})  # fmt: skip
    _return_arrow(ax, by_key, FancyArrowPatch)
    _legend(ax, Rectangle)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _return_arrow(ax: Any, by_key: dict[str, Box], arrow: Any) -> None:
    """The reading travels back up to the plugin, which computes and emits."""
    read, emit = by_key["read"], by_key["emit"]
    p, q = (read.x + read.w * 0.5, read.y), (emit.x + emit.w * 0.5, emit.y + emit.h)
    ax.add_patch(arrow(p, q, arrowstyle="-|>", mutation_scale=14, lw=1.3, color="#333333", zorder=1))
    ax.text(p[0] + 0.8, (p[1] + q[1]) / 2 - 0.4, "the reading, back to the plugin", fontsize=9, color="#1f4e79")


def _legend(ax: Any, rect: Any) -> None:
    """Which package owns a box, in two columns at the top right."""
    for i, (owner, colour) in enumerate(COLOURS.items()):
        x, y = 58.0 + 19.0 * (i % 2), 92.0 - 2.5 * (i // 2)
        ax.add_patch(rect((x, y), 1.6, 1.6, fc=colour, ec="#555555", lw=0.8))
        ax.text(x + 2.3, y + 0.8, owner, fontsize=9, va="center")


def main() -> int:
    """Draw docs/data-path.png."""
    print(draw())
    return 0


if __name__ == "__main__":
    sys.exit(main())
