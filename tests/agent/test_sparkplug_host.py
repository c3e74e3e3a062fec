"""Primary host awareness and store-and-forward: no birth before the host's STATE says online,
NDEATH and a new session when it goes offline, stored data replayed as historical before live;
the Will (killed agent) carries the bdSeq of the last birth. Decoded by Eclipse Tahu's codec."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from edge_agent.agent.sparkplug.payload import Payload
from spb_rules import Msg, Recorder, tahu_available, tahu_decode, violations
from support import AgentProcess, write_config

pytestmark = pytest.mark.skipif(not tahu_available(), reason="needs node and `make npm` (Tahu's sparkplug-payload)")

INSTANCES = """
[[instances]]
name = "ramp"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "ramp", amplitude = 100.0, period_s = 1000 }
"""
SPARKPLUG = '[sparkplug]\nenabled = true\ngroup_id = "plant"\nprimary_host_id = "scada"\n'


def live_after(msgs: list[Msg], births: int) -> int:
    """Live (not historical) DDATA messages after the ``births``-th NBIRTH."""
    seen, live = 0, 0
    for m in list(msgs):
        seen += "/NBIRTH/" in m.topic
        if seen >= births and "/DDATA/" in m.topic:
            p = Payload()
            p.ParseFromString(m.payload)
            live += not any(x.is_historical for x in p.metrics)
    return live


def state(online: bool, ts: int) -> bytes:
    return json.dumps({"online": online, "timestamp": ts}).encode()


def test_waits_for_host_stores_while_offline_and_replays_as_historical(tmp_path: Path, broker: LocalBroker) -> None:
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=INSTANCES, extra=SPARKPLUG)
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    try:
        time.sleep(2.0)
        assert not rec.of("NBIRTH"), "born before the primary host was online"
        rec.publish("spBv1.0/STATE/scada", state(True, 1000), retain=True)
        rec.wait_for(lambda: len(rec.of("DDATA")) >= 15, 15, "replay and live data")
        rec.publish("spBv1.0/STATE/scada", state(False, 2000), retain=True)
        rec.wait_for(lambda: rec.of("NDEATH"), 10, "NDEATH when the host went offline")
        time.sleep(1.5)  # data goes to the store
        rec.publish("spBv1.0/STATE/scada", state(False, 1500), retain=False)  # older: ignored
        rec.publish("spBv1.0/STATE/scada", state(True, 3000), retain=True)
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= 2, 15, "the second birth")
        rec.wait_for(lambda: live_after(rec.msgs, births=2) >= 3, 15, "live data again")
    finally:
        agent.kill()  # the broker delivers the Will: NDEATH with this session's bdSeq
    rec.wait_for(lambda: len(rec.of("NDEATH")) >= 2, 10, "the Will")
    rec.close()
    decoded = tahu_decode(rec.msgs)
    assert violations(decoded) == []
    kinds = [r["topic"].split("/")[2] for r in decoded]
    seen = [
        (
            k,
            r["raw"].get("timestamp"),
            [m.get("longValue") for m in r["raw"].get("metrics", []) if m.get("name") == "bdSeq"],
        )
        for k, r in zip(kinds, decoded, strict=True)
        if k in ("NBIRTH", "NDEATH")
    ]
    assert kinds.count("NBIRTH") == 2 and kinds.count("NDEATH") == 2, seen
    births = [
        int(m["longValue"])
        for r in decoded
        if "NBIRTH" in r["topic"]
        for m in r["raw"]["metrics"]
        if m["name"] == "bdSeq"
    ]
    assert births[1] == (births[0] + 1) % 256  # a new connection, a new bdSeq
    for session in (0, 1):  # after each birth: historical first, then live, never mixed back
        start = [i for i, k in enumerate(kinds) if k == "NBIRTH"][session]
        end = len(kinds) if session else next(i for i, k in enumerate(kinds) if k == "NDEATH")
        flags = [
            all(m.get("isHistorical") for m in decoded[i]["raw"]["metrics"])
            for i in range(start, end)
            if kinds[i] == "DDATA"
        ]
        assert flags[0] is True, f"session {session}: stored data not replayed first"
        assert flags == sorted(flags, reverse=True), f"session {session}: historical after live"
        assert flags[-1] is False, f"session {session}: no live data after the replay"
    historical = [
        int(m["timestamp"])
        for r in decoded
        if "DDATA" in r["topic"]
        for m in r["raw"]["metrics"]
        if m.get("isHistorical")
    ]
    assert historical == sorted(historical), "replayed out of order"


def test_next_server_command_reconnects_with_the_next_bdseq(tmp_path: Path, broker: LocalBroker) -> None:
    from edge_agent.agent.sparkplug.payload import DataType, set_value

    extra = '[sparkplug]\nenabled = true\ngroup_id = "plant"\n'
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=INSTANCES, extra=extra)
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    try:
        rec.wait_for(lambda: len(rec.of("DDATA")) >= 2, 20, "data")
        p = Payload()
        m = p.metrics.add()
        m.name, m.datatype, m.timestamp = "Node Control/Next Server", int(DataType.BOOLEAN), 1
        set_value(m, DataType.BOOLEAN, True)
        rec.publish("spBv1.0/plant/NCMD/t1", bytes(p.SerializeToString()))
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= 2, 15, "the birth after reconnecting")
        rec.wait_for(lambda: live_after(rec.msgs, births=2) >= 2, 15, "data again")
    finally:
        assert agent.stop() == 0
    rec.wait_for(lambda: len(rec.of("NDEATH")) >= 2, 5, "the final NDEATH")
    rec.close()
    decoded = tahu_decode(rec.msgs)
    assert violations(decoded) == []
    seq = [
        (r["topic"].split("/")[2], int(m["longValue"]))
        for r in decoded
        for m in r["raw"].get("metrics", [])
        if m.get("name") == "bdSeq"
    ]
    assert seq == [("NBIRTH", 0), ("NDEATH", 0), ("NBIRTH", 1), ("NDEATH", 1)]
