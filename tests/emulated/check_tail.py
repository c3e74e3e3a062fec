"""Check what `edge-agent tail` saw of the reference plant run under emulation (make test-arm64).

Usage: check_tail.py TAIL.jsonl AGENT.log PLANT.toml --seconds S. Prints one line per finding and
exits 1 on a failure: every instance published, each vibration instance at least half the messages
a native run would (emulation is 3-4x slower: the rate, and how many windows were analysed rather
than lost to FIFO overruns, are reported), seq without gaps or repeats per topic,
nothing undecodable, no error or traceback in the agent's log, and the known answers of the
simulated plant (tachometer 1485 rpm, thermocouples near their start temperatures).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any


def _numbers(d: Any, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a payload, by dotted path."""
    out: dict[str, float] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        out[prefix] = float(d)
    return out


def check(records: list[dict[str, Any]], log: str, plant: dict[str, Any], seconds: float) -> list[str]:
    """Failures (empty when all is well); findings are printed as they are made."""
    failures: list[str] = []
    agent = plant["agent"]["id"]
    prefix = plant.get("mqtt", {}).get("prefix", "edge")
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_topic[r["topic"]].append(r)
        if "error" in r:
            failures.append(f"undecodable message on {r['topic']}: {r['error']}")
    status = by_topic.get(f"{prefix}/{agent}/status", [])
    print(f"status messages: {len(status)}; first: {status[0].get('d') if status else None}")
    if not status:
        failures.append("no status message")
    for inst in plant["instances"]:
        name, interval = inst["name"], float(inst.get("interval_s", 1.0))
        msgs = by_topic.get(f"{prefix}/{agent}/data/{name}", [])
        if not msgs:
            failures.append(f"no data from instance {name}")
        if inst.get("plugin") != "vibration":
            # The others report by exception (deadbands, heartbeats): one message proves the path.
            print(f"data/{name}: {len(msgs)} messages")
            continue
        # Vibration publishes every window: the rate shows whether the emulated CPU keeps up.
        expected = max(1, int(seconds / interval) - 1)
        # Analysed: the window produced numbers (a lost or faulty window publishes nulls and a q flag).
        skip = ("lost_samples", "overruns")
        analysed = sum(1 for m in msgs if any(k not in skip for k in _numbers(m.get("d"))))
        print(
            f"data/{name}: {len(msgs)} messages ({len(msgs) / expected:.0%} of ~{expected} at {interval:g} s), "
            f"{analysed} analysed, {len(msgs) - analysed} lost to overruns or faults"
        )
        if len(msgs) < expected / 2:
            failures.append(f"data/{name}: {len(msgs)} messages, fewer than half of ~{expected}")
        if msgs and not analysed:
            failures.append(f"data/{name}: no window analysed (every one lost or faulty)")
    for topic, msgs in sorted(by_topic.items()):
        seqs = [m["seq"] for m in msgs if "seq" in m and not m.get("retained")]
        bad = [(a, b) for a, b in itertools.pairwise(seqs) if b != a + 1]
        if bad:
            failures.append(f"{topic}: seq not consecutive at {bad[:3]}")
    events = sum(len(m) for t, m in by_topic.items() if "/event/" in t)
    print(f"events: {events}; topics: {len(by_topic)}; messages: {len(records)}")
    failures += _known_answers(by_topic, f"{prefix}/{agent}")
    for line in log.splitlines():
        if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line):
            failures.append(f"agent log: {line.strip()[:200]}")
    return failures


def _known_answers(by_topic: dict[str, list[dict[str, Any]]], base: str) -> list[str]:
    """The simulated plant's known values: tachometer at 24.75 Hz = 1485 rpm, thermocouples warm."""
    failures: list[str] = []
    rpms = [v for m in by_topic.get(f"{base}/data/gpio", []) for k, v in _numbers(m.get("d")).items() if "rpm" in k]
    if rpms:
        last = rpms[-1]
        print(f"gpio tachometer: last {last:.1f} rpm (simulated 1485)")
        if abs(last - 1485) > 1485 * 0.02:
            failures.append(f"gpio tachometer reads {last:.1f} rpm, the simulation turns at 1485")
    temps = [
        v for m in by_topic.get(f"{base}/data/thermo-a", []) for k, v in _numbers(m.get("d")).items() if "temp" in k
    ]
    if temps:
        print(f"thermo-a temperatures: {min(temps):.1f} .. {max(temps):.1f} degC")
        if not all(-50 < t < 400 for t in temps):
            failures.append(f"thermo-a temperatures out of range: {min(temps)} .. {max(temps)}")
    vib = by_topic.get(f"{base}/data/pump1-de", [])
    if vib:
        nums = _numbers(vib[-1].get("d"))
        shown = {k: round(v, 3) for k, v in nums.items() if re.search(r"velocity_rms|bpfo|rpm", k)}
        print(f"pump1-de last: {dict(list(shown.items())[:8])}")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tail")
    p.add_argument("log")
    p.add_argument("plant")
    p.add_argument("--seconds", type=float, default=60.0)
    a = p.parse_args(argv)
    records = [json.loads(line) for line in Path(a.tail).read_text().splitlines() if line.strip()]
    plant = tomllib.loads(Path(a.plant).read_text())
    failures = check(records, Path(a.log).read_text(errors="replace"), plant, a.seconds)
    for f in failures:
        print(f"FAIL {f}")
    print("plant run: " + ("OK" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
