"""Figures of the traffic: messages, values and bytes per plugin (against JSON of the same content),
latency from a message's ``ts`` to its arrival, and the Modbus polls the simulated PLCs served."""

from __future__ import annotations

import math

from bench.common import percentile
from bench.plant.config_copy import Plant
from bench.plant.process_figures import Metric
from bench.plant.subscriber import Collector, Flow

TB_PLC_JSON_B_S = 8400.0  # ThingsBoard IoT Gateway, 500 tags at 1 Hz (the design brief's peer figure)


def flow_figures(col: Collector, seconds: float, interval_of: dict[str, float]) -> list[Metric]:
    """Per plugin and in total: messages, values and bytes per second, against JSON of the same content."""
    out: list[Metric] = []
    tot = Flow()
    tot_full = 0.0
    for plugin in sorted(col.flows):
        f = col.flows[plugin]
        for k in ("msgs", "wire", "payload", "json", "json_compact", "values"):
            setattr(tot, k, getattr(tot, k) + getattr(f, k))
        full = col.full_json_b_per_s(plugin, interval_of) if plugin != "agent" else f.json / seconds
        tot_full += full
        out += _flow_metrics(f"flow.{plugin}", f, seconds, full)
        out.append((f"flow.{plugin}.lat_p99_ms", percentile(f.latency_ms, 99), "ms"))
    out += _flow_metrics("flow.total", tot, seconds, tot_full)
    plc = col.flows.get("plc")
    if plc is not None:
        out.append(
            (
                "plc.wire_pct_of_tb",
                100.0 * plc.wire / seconds / TB_PLC_JSON_B_S,
                "% of 8.4 kB/s",
            )
        )
    return out


def _flow_metrics(key: str, f: Flow, seconds: float, full_json_b_s: float) -> list[Metric]:
    payload_b_s = f.payload / seconds
    return [
        (f"{key}.msgs_per_s", f.msgs / seconds, "msg/s"),
        (f"{key}.values_per_s", f.values / seconds, "values/s"),
        (f"{key}.wire_b_per_s", f.wire / seconds, "B/s MQTT PUBLISH"),
        (f"{key}.payload_b_per_s", payload_b_s, "B/s MessagePack"),
        (f"{key}.json_b_per_s", f.json / seconds, "B/s same messages, json.dumps"),
        (
            f"{key}.vs_json_pct",
            100.0 * f.payload / f.json if f.json else math.nan,
            "% payload of json.dumps",
        ),
        (
            f"{key}.json_compact_b_per_s",
            f.json_compact / seconds,
            "B/s same messages, compact JSON 7 digits",
        ),
        (
            f"{key}.vs_json_compact_pct",
            100.0 * f.payload / f.json_compact if f.json_compact else math.nan,
            "%",
        ),
        (f"{key}.json_full_b_per_s", full_json_b_s, "B/s JSON, every value every poll"),
        (
            f"{key}.vs_json_full_pct",
            100.0 * payload_b_s / full_json_b_s if full_json_b_s else math.nan,
            "%",
        ),
    ]


def latency_figures(col: Collector) -> list[Metric]:
    """From a message's ``ts`` to its arrival at the subscriber, by kind of message."""
    out: list[Metric] = []
    for cls in ("values", "vibration windows", "events"):
        lat = col.latency.get(cls, [])
        key = "latency." + cls.split()[0]
        out += [
            (f"{key}.n", len(lat), "messages"),
            (f"{key}.p50_ms", percentile(lat, 50), "ms"),
            (f"{key}.p99_ms", percentile(lat, 99), "ms"),
            (f"{key}.max_ms", max(lat, default=math.nan), "ms"),
        ]
    return out


def modbus_figures(plant: Plant, window: tuple[float, float]) -> list[Metric]:
    """Per simulated PLC, as its server saw them: polls, requests per poll, poll time."""
    out: list[Metric] = []
    for instance, served in sorted((plant.sim.polls if plant.sim else {}).items()):
        polls = [(n, span) for t, n, span in served if window[0] <= t <= window[1]]
        spans = [s for _, s in polls]
        key = f"modbus.{instance}"
        out += [
            (f"{key}.polls", len(polls), "in the window"),
            (
                f"{key}.requests_per_poll",
                sum(n for n, _ in polls) / len(polls) if polls else math.nan,
                "",
            ),
            (
                f"{key}.requests_max",
                max((n for n, _ in polls), default=math.nan),
                "per poll",
            ),
            (f"{key}.poll_p50_ms", percentile(spans, 50), "ms (server side)"),
            (f"{key}.poll_p95_ms", percentile(spans, 95), "ms (server side)"),
            (f"{key}.poll_max_ms", max(spans, default=math.nan), "ms (server side)"),
        ]
    return out + modbus_all_figures(plant, window)


def modbus_all_figures(plant: Plant, window: tuple[float, float]) -> list[Metric]:
    """Every PLC together: the worst share of its polls served (is every tag read at its interval,
    e.g. once a second?) and the poll times."""
    served = plant.sim.polls if plant.sim else {}
    if not served:
        return []
    seconds = max(window[1] - window[0], 1e-9)
    ratios = [
        sum(1 for t, _, _ in p if window[0] <= t <= window[1]) * plant.interval_of.get(name, 1.0) / seconds
        for name, p in served.items()
    ]
    spans = [span for p in served.values() for t, _, span in p if window[0] <= t <= window[1]]
    return [
        ("modbus.all.plcs", len(served), "simulated PLCs"),
        (
            "modbus.all.min_poll_ratio",
            min(ratios),
            "polls served / polls due, worst PLC (1.0: every tag at its interval)",
        ),
        ("modbus.all.poll_p50_ms", percentile(spans, 50), "ms (server side, all PLCs)"),
        ("modbus.all.poll_p95_ms", percentile(spans, 95), "ms (server side, all PLCs)"),
    ]
