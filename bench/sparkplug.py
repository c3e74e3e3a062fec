"""Sparkplug DDATA size against JSON, and the session rules over a long run (by hand).

    .venv/bin/python -m bench.sparkplug --seconds 60          # sizes, per instance and overall
    .venv/bin/python -m bench.sparkplug --soak 600            # 10 min, a Rebirth every 20 s, one broker restart

Runs the reference plant (simulated, examples/reference-plant.toml) with `[sparkplug]` on beside
the native topics, records every message, and prints per instance: DDATA bytes, the bytes of
`json.dumps` of the same values (the metrics each DDATA carries, by name), and the native
MessagePack bytes of the same emits against their JSON. The soak mode adds a driver returning
junk (sim ``junk_every``: strings, NaN, infinities, lists, undeclared keys), sends a Rebirth every
``--rebirth-every`` seconds and restarts the broker half-way, then decodes every message with
Eclipse Tahu's JS codec (`make npm`) and counts Sparkplug session-rule violations.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from edge_agent.agent.devtools.local_broker import LocalBroker  # noqa: E402
from edge_agent.agent.messaging import codec  # noqa: E402
from edge_agent.agent.sparkplug.payload import Payload, get_value  # noqa: E402
from spb_rules import Recorder, tahu_available, tahu_decode, violations  # noqa: E402
from support import AgentProcess  # noqa: E402

TYPE_NAMES = {1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16", 7: "UInt32", 8: "UInt64"}
TYPE_NAMES |= {9: "Float", 10: "Double", 11: "Boolean", 12: "String"}
SPARKPLUG = '\n[sparkplug]\nenabled = true\ngroup_id = "plant"\n'
JUNK = """
[[instances]]
name = "junk"
plugin = "values"
interval_s = 0.5
driver = { type = "sim", channels = 2, junk_every = 3 }
"""


def plant_config(tmp: Path, *, junk: bool = False) -> Path:
    """The reference plant, everything in process (simulated PLC and accelerometers), Sparkplug on."""
    text = (ROOT / "examples" / "reference-plant.toml").read_text()
    text = text.replace('state_dir = "/tmp/edge-agent-reference"', f'state_dir = "{tmp / "state"}"')
    text = text.replace('transport = "tcp"', 'backend = "sim"')
    text = text.replace('prefix = "edge"', 'prefix = "edge"\nreconnect_min_s = 2.0', 1)
    text = re.sub(r'^type = "iio"$', 'type = "iio"\nbackend = "sim"', text, flags=re.M)
    for csv in (ROOT / "examples").glob("*.csv"):
        (tmp / csv.name).write_bytes(csv.read_bytes())
    path = tmp / "plant.toml"
    path.write_text(text + (JUNK if junk else "") + SPARKPLUG)
    return path


def sizes(msgs: list[Any], agent_id: str) -> dict[str, dict[str, int]]:
    """Per instance: DDATA bytes, JSON of the same values, native bytes and their JSON."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    names: dict[int, str] = {}
    types: dict[int, int] = {}
    for m in msgs:
        parts = m.topic.split("/")
        if m.topic.startswith("spBv1.0/") and parts[2] in ("NBIRTH", "DBIRTH", "DDATA"):
            p = Payload()
            p.ParseFromString(m.payload)
            if parts[2] != "DDATA":
                names.update({x.alias: x.name for x in p.metrics if x.HasField("alias")})
                types.update({x.alias: x.datatype for x in p.metrics if x.HasField("alias")})
                continue
            same = {names.get(x.alias, str(x.alias)): get_value(x, x.datatype or None) for x in p.metrics}
            row = out[parts[4]]
            row["ddata_b"] += len(m.payload)
            row["ddata_json_b"] += len(json.dumps(same))
            row["ddata_n"] += 1
            full = {  # the same message in Sparkplug's JSON form (as Tahu's decodePayload gives it)
                "timestamp": p.timestamp,
                "metrics": [
                    {"name": names.get(x.alias, ""), "alias": x.alias, "timestamp": x.timestamp,
                     "type": TYPE_NAMES.get(types.get(x.alias, 0), "Unknown"),
                     "value": get_value(x, types.get(x.alias))}
                    for x in p.metrics
                ],
                "seq": p.seq,
            }  # fmt: skip
            row["spb_json_b"] += len(json.dumps(full))
            row["metrics"] += len(p.metrics)
            for x in p.metrics:  # what a DDATA without per-metric timestamps would weigh (not 3.0)
                x.ClearField("timestamp")
            row["no_ts_b"] += len(p.SerializeToString())
        elif m.topic.startswith(f"edge/{agent_id}/data/"):
            env = codec.decode(m.payload)
            row = out[parts[3]]
            row["native_b"] += len(m.payload)
            row["native_json_b"] += len(json.dumps(env))
            row["native_n"] += 1
    return out


def report(table: dict[str, dict[str, int]]) -> None:
    total: dict[str, int] = defaultdict(int)
    head = ("instance", "DDATA", "metrics", "bytes", "JSON same", "ratio", "no m.ts", "vs SpB JSON")
    head += ("native", "bytes", "JSON", "ratio")
    print("{:<12} {:>6} {:>8} {:>9} {:>10} {:>6} {:>7} {:>11}   {:>6} {:>9} {:>9} {:>6}".format(*head))
    for name in sorted(table):
        r = table[name]
        for k, v in r.items():
            total[k] += v
        _row(name, r)
    _row("overall", total)
    print("ratio: DDATA bytes / json.dumps of the same values by metric name; no m.ts: the same DDATA")
    print("without per-metric timestamps (Sparkplug 3.0 requires them); vs SpB JSON: DDATA bytes / the same")
    print("DDATA in Sparkplug's JSON form (name, alias, timestamp, type, value); native: MessagePack / json.dumps")


def _row(name: str, r: dict[str, int]) -> None:
    def pct(a: int, b: int) -> str:
        return f"{a / b:.1%}" if b else "-"

    print(
        f"{name:<12} {r['ddata_n']:>6} {r['metrics']:>8} {r['ddata_b']:>9} {r['ddata_json_b']:>10} "
        f"{pct(r['ddata_b'], r['ddata_json_b']):>6} {pct(r['no_ts_b'], r['ddata_json_b']):>7} "
        f"{pct(r['ddata_b'], r['spb_json_b']):>11}   "
        f"{r['native_n']:>6} {r['native_b']:>9} {r['native_json_b']:>9} {pct(r['native_b'], r['native_json_b']):>6}"
    )


def rebirth(rec: Recorder) -> None:
    from edge_agent.agent.sparkplug.payload import DataType, set_value

    p = Payload()
    p.timestamp = int(time.time() * 1000)
    m = p.metrics.add()
    m.name, m.datatype, m.timestamp = "Node Control/Rebirth", int(DataType.BOOLEAN), p.timestamp
    set_value(m, DataType.BOOLEAN, True)
    end = time.monotonic() + 15.0
    while not rec.client.is_connected() and time.monotonic() < end:  # back from a broker restart
        time.sleep(0.1)
    rec.publish("spBv1.0/plant/NCMD/plant-01", p.SerializeToString())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="size run length")
    ap.add_argument("--soak", type=float, help="session-rule run length (Rebirths, one broker restart, junk)")
    ap.add_argument("--rebirth-every", type=float, default=20.0, help="seconds between Rebirths in --soak")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = LocalBroker().start()
        rec = Recorder(broker.url, topics=("spBv1.0/#", "edge/+/data/#"))
        agent = AgentProcess(plant_config(tmp, junk=bool(a.soak)), broker.url, log_path=tmp / "agent.log")
        run_s = a.soak or a.seconds
        start = time.monotonic()
        try:
            if a.soak:
                every = a.rebirth_every
                events = sorted(
                    [(k * every, "rebirth") for k in range(1, int(run_s / every))] + [(run_s * 0.5, "broker restart")]
                )
                for at, what in events:
                    time.sleep(max(0.0, start + at - time.monotonic()))
                    print(f"{time.monotonic() - start:6.0f} s: {what}", flush=True)
                    if what == "rebirth":
                        rebirth(rec)
                    else:  # the recorder reconnects within 0.1-1 s, the agent after 2 s or more
                        broker.stop()
                        time.sleep(2.0)
                        broker.start()
            time.sleep(max(0.0, start + run_s - time.monotonic()))
        finally:
            agent.stop()
            time.sleep(0.5)
            rec.close()
            broker.close()
        table = sizes(rec.msgs, "plant-01")
        print(f"\nreference plant, {run_s:.0f} s, Sparkplug beside native :")
        report(table)
        if a.soak:
            if not tahu_available():
                print("Tahu codec not installed (make npm): session rules not checked")
                return 1
            decoded = tahu_decode(rec.msgs)
            bad = violations(decoded)
            kinds = [r["topic"].split("/")[2] for r in decoded]
            print(
                f"\nsession rules over {len(decoded)} Sparkplug messages "
                f"(NBIRTH {kinds.count('NBIRTH')}, DBIRTH {kinds.count('DBIRTH')}, DDATA {kinds.count('DDATA')}): "
                f"{len(bad)} violation(s)"
            )
            for b in bad[:20]:
                print("  ", b)
            junk = [codec.decode(m.payload) for m in rec.msgs if m.topic == "edge/plant-01/data/junk"]
            nulled = sum(1 for e in junk if "bad_value" in (e.get("q") or {}).values())
            log_text = (tmp / "agent.log").read_text(errors="replace") if (tmp / "agent.log").exists() else ""
            print(
                f"junk driver: {len(junk)} native messages, {nulled} with a bad_value null; "
                f"agent log: {log_text.count('Traceback')} traceback(s)"
            )
            return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
