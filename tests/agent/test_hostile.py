"""The hostile-input suite (issue 30, docs/security.md): every attack of the security review against
a running agent on mosquitto, and the bounds it relies on checked field by field."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.bounds import echo_id, value_errors
from edge_agent.agent.config.layers import APPLIED_FILE, load_layer
from edge_agent.agent.remote.commands import CommandError, parse_request
from edge_agent.agent.remote.config_push import parse_document
from edge_agent.agent.runtime.control import Rejected
from flood import garbage, run_flood, valid_pushes
from support import AgentProcess, RemoteAgent, Subscriber, write_config

EXTREMES: list[Any] = [
    2**64,
    -(2**63) - 1,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    pytest.param("x" * 10_000_000, marks=pytest.mark.slow, id="10MB"),  # 0.3 s each: not in test-fast
]
DOC_FIELDS = ("version", "id", "target", "expires", "nonce", "check_s", "force", "kid", "sig")
GOOD = {"version": 3, "config": {"instances": []}}


def _json(doc: dict[str, Any]) -> bytes:
    """JSON as a hostile client writes it: huge integers and NaN/Infinity literals allowed."""
    return json.dumps(doc).encode()


@pytest.mark.parametrize("field", DOC_FIELDS)
@pytest.mark.parametrize("value", EXTREMES, ids=["2^64", "-2^63-1", "nan", "inf", "-inf", "1e308", "10MB"])
def test_every_push_field_refuses_the_extremes(field: str, value: Any) -> None:
    """No extreme value of any field passes the parser (none of them is a valid value)."""
    doc = {**GOOD, field: value}
    carried = not isinstance(value, int) or -(2**63) <= value < 2**64  # else MessagePack cannot carry it
    for payload in (_json(doc), msgpack.packb(doc)) if carried else (_json(doc),):
        with pytest.raises(Rejected) as exc:
            parse_document(payload, 16 * 1024 * 1024)
        assert any(field in e or "(document)" in e for e in exc.value.errors), exc.value.errors
        assert all(len(e) <= 300 for e in exc.value.errors)
        ident = exc.value.ident
        assert ident is None or (isinstance(ident, str) and len(ident) <= 128) or abs(ident) < 2**53


@pytest.mark.parametrize("value", EXTREMES[:5], ids=["2^64", "-2^63-1", "nan", "inf", "-inf"])
def test_extremes_inside_instances_are_refused(value: Any) -> None:
    """A number no message can carry (or NaN) anywhere in a pushed table is refused with its path."""
    doc = {"version": 2, "config": {"instances": [{"name": "a", "plugin": "values", "interval_s": value}]}}
    with pytest.raises(Rejected) as exc:
        parse_document(_json(doc), 1 << 20)
    assert any("(document).config.instances[0].interval_s" in e for e in exc.value.errors), exc.value.errors


def test_command_requests_are_bounded() -> None:
    """Command ids are echoed bounded; NaN and huge integers in a request are refused."""
    assert echo_id("x" * 1_000_000) == "x" * 128
    assert echo_id(2**64) is None and echo_id(7) == 7 and echo_id({"a": 1}) is None
    for bad in ('{"id": 1, "args": {"value": NaN}}', '{"id": 18446744073709551616}', '{"id": "' + "x" * 300_000 + '"}'):
        with pytest.raises(CommandError):
            parse_request(bad.encode())
    assert value_errors({"a": [[[[1]]]]}) == []


def test_a_stored_layer_out_of_range_is_quarantined(tmp_path: Path) -> None:
    """The state file a 2^64 version left behind (before the fix) is moved aside, not run."""
    (tmp_path / APPLIED_FILE).write_text(json.dumps({"version": 2**64, "instances": []}))
    layer = load_layer(tmp_path)
    assert layer.version == 0 and layer.faults and "quarantined" in layer.faults[0]
    assert not (tmp_path / APPLIED_FILE).exists()
    assert list(tmp_path.glob(APPLIED_FILE + ".quarantined-*"))


def test_huge_version_push_is_rejected_and_the_agent_keeps_talking(agent: RemoteAgent) -> None:
    """Issue 30, 1: the one JSON push that silenced the agent is now a clear rejection."""
    raw = b'{"version": 18446744073709551616, "id": "big", "config": {"instances": []}}'
    result = agent.push(None, raw=raw)
    assert result["status"] == "rejected" and result["id"] == "big"
    assert any(e.startswith("version:") for e in result["errors"]), result
    assert "attempted" not in result
    assert agent.push({"version": 1, "config": {"instances": []}})["status"] == "accepted"
    last_state = lambda: agent.sub.on("edge/t1/config/state")[-1].env["d"]  # noqa: E731
    agent.sub.wait_for(lambda: last_state()["version"] == 1, 5, "config/state of version 1")
    assert sub_status(agent)["config_version"] == 1


def sub_status(agent: RemoteAgent) -> dict[str, Any]:
    agent.sub.wait_for(lambda: agent.sub.on("edge/t1/status")[-1].env["d"]["config_version"] == 1, 5, "status")
    return agent.sub.on("edge/t1/status")[-1].env["d"]  # type: ignore[no-any-return]


def test_a_bad_state_file_is_quarantined_at_start(tmp_path: Path, broker: Any) -> None:
    """A restart over a state file no message can carry starts on the local file, with an event."""
    state = tmp_path / "state"
    state.mkdir()
    (state / APPLIED_FILE).write_text('{"version": 18446744073709551616, "instances": []}')
    cfg = write_config(tmp_path / "a.toml", state_dir=state, instances=_BASE_STEADY)
    sub = Subscriber(broker.url)
    proc = AgentProcess(cfg, broker.url)
    try:
        sub.wait_for(lambda: len(sub.on("edge/t1/data/steady")) >= 2, 20, "data after the quarantine")
        events = [m.env["d"] for m in sub.on("edge/t1/event/agent")]
        assert any(e["kind"] == "state_quarantined" for e in events), events
        assert sub.on("edge/t1/status")[-1].env["d"]["config_version"] == 0
    finally:
        proc.kill()
        sub.close()
    assert list(state.glob(APPLIED_FILE + ".quarantined-*"))


_BASE_STEADY = """
[[instances]]
name = "steady"
plugin = "values"
interval_s = 0.1
driver = { type = "sim", profile = "ramp", amplitude = 1000.0, period_s = 1000 }
options = { heartbeat_s = 0 }
"""


@pytest.mark.parametrize("kind", ["garbage", "valid_pushes"])
def test_a_config_set_flood_loses_nothing(tmp_path: Path, broker: Any, kind: str) -> None:
    """Issue 30, 2: 10,000 msg/s on config/set (5 s here; bench/hostile_flood.py runs 60 s and
    prints the silence figures): the probe keeps every seq number, memory stays under the unit's
    MemoryMax, no false alarm (a Modbus PLC is polled throughout), the shed messages are reported,
    answers stay bounded."""
    result = run_flood(tmp_path, broker.url, garbage if kind == "garbage" else valid_pushes, seconds=5.0)
    print("\n".join(result.lines(kind)))
    assert result.sent >= 10_000
    assert result.probe_messages > 0 and result.longest_silence_s < result.seconds, "the probe went silent"
    assert result.seq_gaps == 0
    assert not result.false_alarms and result.plc_messages > 0
    assert result.rss_max_mb < 256
    assert result.shed_reported > 0
    assert result.results < result.sent / 10  # shed before any answer is built


class _Info:
    def __init__(self, mid: int, rc: int) -> None:
        self.mid, self.rc = mid, rc


class _RefusingClient:
    """paho's publish() as the review saw it under a flood: rc 15 (its ids exhausted) for a while,
    and the refused message's id equal to one still in flight."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.published, self.mid = refusals, [], 0

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> _Info:
        if self.refusals > 0:
            self.refusals -= 1
            return _Info(1, 15)  # the id of the message already in flight
        self.mid += 1
        self.published.append((self.mid, payload))
        return _Info(self.mid, 0)


def test_a_refused_publish_is_retried_and_never_acknowledged_by_another_puback() -> None:
    """Issue 30, 2: rc 15 was ignored, and the PUBACK of an older message with the same id deleted
    the refused data message unsent. Now it stays first in the outbox until paho takes it."""
    asyncio.run(_refused_publish())


async def _refused_publish() -> None:
    from edge_agent.agent.messaging.mqtt_session import MqttSession, SessionOptions
    from edge_agent.agent.messaging.outbox import MemoryOutbox, Message, Priority

    outbox = MemoryOutbox(100)
    session = MqttSession(SessionOptions(url="mqtt://127.0.0.1:1", client_id="t"), outbox)
    client = _RefusingClient(refusals=0)
    session.client = client  # type: ignore[assignment]
    session.connected.set()
    sender = asyncio.get_running_loop().create_task(session._send_loop())
    try:
        outbox.put(Message("t/a", b"first", 1, False, Priority.DATA, 1))
        while not client.published:
            await asyncio.sleep(0.01)
        client.refusals = 3
        outbox.put(Message("t/a", b"second", 1, False, Priority.DATA, 2))
        await asyncio.sleep(0.1)
        assert session.stats.refused >= 1 and outbox.depth() == 2
        session._on_publish(client, None, 1, 0)  # PUBACK of "first" (mid 1): must not take "second"
        assert outbox.depth() == 1
        while len(client.published) < 2:
            await asyncio.sleep(0.01)
        assert client.published[1] == (2, b"second")
        session._on_publish(client, None, 2, 0)
        assert outbox.depth() == 0
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


SPB_INSTANCES = """
[[instances]]
name = "ramp"
plugin = "values"
interval_s = 0.2
driver = { type = "sim", profile = "ramp", amplitude = 100.0, period_s = 1000 }
"""


def _ncmd(names: list[str]) -> bytes:
    from edge_agent.agent.sparkplug.payload import DataType, Payload, set_value

    p = Payload()
    for name in names:
        m = p.metrics.add()
        m.name, m.datatype, m.timestamp = name, int(DataType.BOOLEAN), 1
        set_value(m, DataType.BOOLEAN, True)
    return bytes(p.SerializeToString())


def _node_metric(rec: Any, name: str) -> int:
    """The latest value of a node metric (by name in NBIRTH, by alias in NDATA), 0 if none yet."""
    from edge_agent.agent.sparkplug.payload import Payload

    alias, value = None, 0
    for m in rec.of("NBIRTH") + rec.of("NDATA"):
        p = Payload()
        p.ParseFromString(m.payload)
        for metric in p.metrics:
            if metric.name == name:
                alias, value = metric.alias, metric.long_value
            elif alias is not None and not metric.name and metric.alias == alias:
                value = metric.long_value
    return value


def test_sparkplug_state_is_parsed_totally_and_cannot_wedge_the_node(tmp_path: Path, broker: Any) -> None:
    """Issue 30, 6: ``timestamp: Infinity`` raised OverflowError into paho; a far-future
    ``online: false`` made every later real STATE look older. Neither does anything now."""
    import time

    from spb_rules import Recorder

    extra = '[sparkplug]\nenabled = true\ngroup_id = "plant"\nprimary_host_id = "scada"\n'
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=SPB_INSTANCES, extra=extra)
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    now_ms = int(time.time() * 1000)
    try:
        for bad in (
            b'{"online": true, "timestamp": Infinity}',
            b'{"online": true, "timestamp": NaN}',
            b'{"online": true, "timestamp": 1e308}',
            b'{"online": "yes", "timestamp": 5}',
            b"[" * 100_000,
            b"\xff\xfe",
        ):
            rec.publish("spBv1.0/STATE/scada", bad)
        rec.publish("spBv1.0/STATE/scada", json.dumps({"online": True, "timestamp": now_ms}).encode(), retain=True)
        rec.wait_for(lambda: rec.of("NBIRTH") and len(rec.of("DDATA")) >= 2, 20, "birth and data")
        far = now_ms + 10 * 365 * 86400 * 1000
        rec.publish("spBv1.0/STATE/scada", json.dumps({"online": False, "timestamp": far}).encode())
        time.sleep(1.0)
        assert not rec.of("NDEATH"), "a STATE from ten years ahead was believed"
        real = {"retain": True}  # a real host's STATE is retained
        rec.publish("spBv1.0/STATE/scada", json.dumps({"online": False, "timestamp": now_ms + 1}).encode(), **real)
        rec.wait_for(lambda: rec.of("NDEATH"), 10, "NDEATH for the real offline")
        rec.publish("spBv1.0/STATE/scada", json.dumps({"online": True, "timestamp": now_ms + 2}).encode(), **real)
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= 2, 15, "born again for the real online")
    finally:
        agent.kill()
        rec.close()
    assert "OverflowError" not in agent.log() and "Traceback" not in agent.log()


def test_a_rebirth_flood_is_coalesced(tmp_path: Path, broker: Any) -> None:
    """Issue 30, 5: NCMD Rebirth at 1,000/s turned 420 kB in into 486 MB of births out. The first
    is answered, the rest within 2 s become one more birth; unknown node commands give one event."""
    import time

    from spb_rules import Recorder

    extra = '[sparkplug]\nenabled = true\ngroup_id = "plant"\nhealth_interval_s = 1\n'
    cfg = write_config(tmp_path / "a.toml", state_dir=tmp_path / "s", instances=SPB_INSTANCES, extra=extra)
    rec = Recorder(broker.url)
    agent = AgentProcess(cfg, broker.url)
    try:
        rec.wait_for(lambda: len(rec.of("DDATA")) >= 2, 20, "data")
        births, start = len(rec.of("NBIRTH")), time.monotonic()
        for _ in range(300):  # a burst, as fast as the client writes
            rec.client.publish("spBv1.0/plant/NCMD/t1", _ncmd(["Node Control/Rebirth"]), qos=0)
        rec.publish("spBv1.0/plant/NCMD/t1", _ncmd(["Node Control/Rebirth"]))
        burst_s = time.monotonic() - start
        rec.wait_for(lambda: len(rec.of("NBIRTH")) >= births + 2, 15, "the answer and the coalesced rebirth")
        time.sleep(2.5)
        # one answered at once, then at most one per 2 s while requests keep coming, one after them
        assert len(rec.of("NBIRTH")) - births <= 2 + burst_s / 2 + 1, "every Rebirth request was answered"
        rec.publish("spBv1.0/plant/NCMD/t1", _ncmd([f"x{i}" * 50 for i in range(1000)]))
        rec.wait_for(lambda: len(rec.of("NDATA")) >= 1, 10, "the ncmd_rejected event as node metrics")
        rec.wait_for(lambda: _node_metric(rec, "Health/Rebirths Coalesced") > 0, 15, "the count as a metric")
    finally:
        agent.kill()
        rec.close()


def test_new_command_names_add_no_state(agent: RemoteAgent) -> None:
    """Issue 30, 4: one new cmd/<name> per message added a row to seq.sqlite forever. Unknown names
    are still answered, with numbers from a bounded in-memory table; known ones stay durable."""
    import sqlite3
    import time

    for i in range(150):
        agent.sub.client.publish(f"edge/t1/cmd/junk{i}", msgpack.packb({"id": "x" * 100_000}), qos=0)
        time.sleep(0.025)  # under the inbound rate limit: every one is read and answered
    agent.sub.client.publish("edge/t1/cmd/ping", msgpack.packb({"id": "p"}), qos=1)
    agent.sub.wait_for(lambda: agent.sub.on("edge/t1/cmd/ping/result"), 10, "the ping answer")
    agent.sub.wait_for(lambda: agent.sub.on("edge/t1/cmd/junk149/result"), 10, "the last junk answer")
    answer = agent.sub.on("edge/t1/cmd/junk0/result")[0].env["d"]
    assert answer["ok"] is False and answer["id"] == "x" * 128
    long_name = "n" * 10_000  # refused before the authority check audits it
    agent.sub.client.publish(f"edge/t1/cmd/{long_name}", msgpack.packb({"id": 1}), qos=1)
    agent.sub.wait_for(lambda: agent.sub.on(f"edge/t1/cmd/{long_name}/result"), 10, "the long name's answer")
    assert "10000 characters" in agent.sub.on(f"edge/t1/cmd/{long_name}/result")[0].env["d"]["error"]
    assert agent.proc.stop() == 0
    db = sqlite3.connect(agent.tmp / "state" / "seq.sqlite")
    topics = [t for (t,) in db.execute("SELECT topic FROM seq")]
    db.close()
    assert "edge/t1/cmd/ping/result" in topics
    assert not [t for t in topics if "junk" in t], topics


STATE_FILES = (
    "applied-config.json",
    "seq.sqlite",
    "spool.sqlite",
    "maintenance.sqlite",
    "history.sqlite",
    "audit.sqlite",
    "sparkplug.sqlite",
    "sparkplug-bdseq",
)


@pytest.mark.parametrize("content", [b"\x00garbage" * 1000, b"{" * 100_000, b""], ids=["binary", "deep", "empty"])
def test_no_state_file_can_keep_the_agent_from_starting(tmp_path: Path, broker: Any, content: bytes) -> None:
    """Issue 30, 1: every state file the agent reads at start, overwritten with junk: it starts,
    publishes, and says what it moved aside. Never a crash loop."""
    state = tmp_path / "state"
    state.mkdir()
    for name in STATE_FILES:
        (state / name).write_bytes(content)
    extra = '[spool]\nenabled = true\n[sparkplug]\nenabled = true\ngroup_id = "plant"\n'
    cfg = write_config(tmp_path / "a.toml", state_dir=state, instances=_BASE_STEADY, extra=extra)
    sub = Subscriber(broker.url, ["edge/t1/#"])
    proc = AgentProcess(cfg, broker.url)
    try:
        sub.wait_for(lambda: len(sub.on("edge/t1/data/steady")) >= 3, 30, "data despite the junk state files")
        assert proc.proc.poll() is None
        kinds = [m.env["d"]["kind"] for m in sub.on("edge/t1/event/agent")]
        if content:  # an empty file is a valid empty SQLite database (and "no layer")
            assert "state_quarantined" in kinds and "seq_store_fault" in kinds, kinds
    finally:
        code = proc.stop()
        sub.close()
    assert code == 0, proc.log()[-3000:]


COMMAND_NAMES = (
    "ping", "status", "config", "reload", "restart", "history", "alarms", "ack", "shelve", "unshelve",
    "audit", "calibrate", "captures", "capture_get", "report", "capture", "write", "sim_fault",
)  # fmt: skip
ARG_EXTREMES: list[Any] = [2**64 - 1, -(2**63), 1e308, -1e308, "x" * 100_000, [[[[]]]] * 1000, {"a": {"b": {}}}]


def test_every_command_takes_extreme_arguments(agent: RemoteAgent) -> None:
    """Issue 30, 1: every command, every usual argument name, each extreme MessagePack can carry:
    always one answer, never an internal error, and the agent keeps publishing."""
    import time

    keys = ("instance", "seconds", "n", "from", "to", "tag", "value", "channel", "points", "id", "limit", "step_s")
    sent = 0
    for name in COMMAND_NAMES:
        for value in ARG_EXTREMES:
            args = {k: value for k in keys}
            req = {"id": sent, "instance": "steady" if sent % 2 else value, "args": args}
            agent.sub.client.publish(f"edge/t1/cmd/{name}", msgpack.packb(req), qos=1)
            sent += 1
            time.sleep(0.03)  # under the inbound rate: each is read and answered

    def answers() -> list[dict[str, Any]]:
        return [m.env["d"] for m in agent.sub.messages if m.topic.endswith("/result") and "/cmd/" in m.topic]

    agent.sub.wait_for(lambda: len(answers()) >= sent, 60, f"{sent} answers")
    internal = [a for a in answers() if not a.get("ok") and "Error:" in str(a.get("error"))]
    assert not internal, internal[:5]
    n = len(agent.sub.on("edge/t1/data/steady"))
    agent.sub.wait_for(lambda: len(agent.sub.on("edge/t1/data/steady")) > n + 3, 10, "data after the commands")
    assert "Traceback" not in agent.proc.log(), agent.proc.log()[-4000:]


def test_a_reload_flood_shares_runs() -> None:
    """Issue 30, 4: expensive requests (cmd/reload re-reads and re-validates the file) run at most
    once per interval; requests meanwhile share the next run's answer and are counted."""
    from edge_agent.agent.remote.coalesce import Coalescer

    async def scenario() -> tuple[list[Any], Coalescer]:
        calls = 0

        async def reload() -> dict[str, int]:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.3)
            return {"run": calls}

        c = Coalescer(reload, interval_s=0.2)
        results = await asyncio.gather(*(c.run() for _ in range(200)))  # arrive together: one run
        first = asyncio.ensure_future(c.run())  # run 2 starts 0.2 s after run 1 started, once run 1 ended
        await asyncio.sleep(0.15)  # in the middle of run 2 (0.3 s long): these wait for run 3
        later = await asyncio.gather(first, *(c.run() for _ in range(50)))
        return [*results, *later], c

    results, c = asyncio.run(scenario())
    assert c.runs == 3 and c.coalesced == 199 + 49
    assert results[0] == results[199] == {"run": 1}
    assert results[200] == {"run": 2} and results[201] == results[-1] == {"run": 3}


def test_the_spool_keeps_a_refused_message_until_its_own_ack(tmp_path: Path) -> None:
    """Issue 30, 2, with the durable spool: a message the client refused goes back first in its
    topic, is not deleted by another message's ack, survives a stop, and is sent again in order."""

    from edge_agent.agent.config.schema import SpoolSection
    from edge_agent.agent.messaging.outbox import Message, Priority
    from edge_agent.agent.messaging.spool import SpoolOutbox

    path = tmp_path / "spool"

    def msg(seq: int) -> Message:
        return Message("edge/t1/data/probe", seq.to_bytes(4, "big"), 1, False, Priority.DATA, seq)

    async def go() -> None:
        box = SpoolOutbox(path, SpoolSection())
        for seq in (1, 2, 3):
            box.put(msg(seq))
        first, second = await box.get(), await box.get()
        box.requeue(second)  # paho said rc 15 for seq 2
        box.ack(first)  # the PUBACK of seq 1 takes seq 1 only
        assert box.depth() == 2
        again = await box.get()
        assert again.seq == 2  # first again, before 3
        await box.close()  # 2 (in flight, unacked) and 3 (queued) stay for the next run

    asyncio.run(go())
    from edge_agent.agent.messaging.spool_segments import read_live

    assert [r[2] for r in read_live(path)] == [2, 3]
