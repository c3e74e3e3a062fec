"""Sparkplug payload mapping: the committed schema module, value fields per data type, decoding."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from edge_agent.agent.sparkplug.payload import (
    REASON_MAX_CHARS,
    DataType,
    Payload,
    QualityCode,
    get_value,
    quality_code,
    quality_properties,
    set_properties,
    set_value,
    to_dict,
)
from edge_agent.agent.sparkplug.topics import event_flags
from edge_agent.drivers.contract import Quality
from spb_rules import property_violations

ROOT = Path(__file__).resolve().parents[2]
SP = ROOT / "agent" / "sparkplug"


@pytest.mark.slow
def test_generated_module_matches_the_proto(tmp_path: Path) -> None:
    """sparkplug_b_pb2.py is what `make proto` makes from sparkplug_b.proto (no hand edits)."""
    pytest.importorskip("grpc_tools")
    shutil.copy(SP / "sparkplug_b.proto", tmp_path)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", str(tmp_path / "sparkplug_b.proto")],
        check=True,
    )  # fmt: skip
    for name in ("sparkplug_b_pb2.py", "sparkplug_b_pb2.pyi"):
        assert (tmp_path / name).read_text() == (SP / name).read_text(), f"{name}: run `make proto` and commit"


def test_field_numbers_are_the_specifications() -> None:
    m = Payload.Metric.DESCRIPTOR.fields_by_name
    numbers = {n: m[n].number for n in ("name", "alias", "timestamp", "datatype", "is_historical", "is_null")}
    assert numbers == {"name": 1, "alias": 2, "timestamp": 3, "datatype": 4, "is_historical": 5, "is_null": 7}
    assert {n: m[n].number for n in ("int_value", "long_value", "float_value", "double_value", "string_value")} == {
        "int_value": 10, "long_value": 11, "float_value": 12, "double_value": 13, "string_value": 15,
    }  # fmt: skip
    p = Payload.DESCRIPTOR.fields_by_name
    assert (p["timestamp"].number, p["metrics"].number, p["seq"].number) == (1, 2, 3)


@pytest.mark.parametrize(
    ("datatype", "value", "field"),
    [
        (DataType.INT32, -5, "int_value"),
        (DataType.UINT32, 4_294_967_295, "int_value"),
        (DataType.INT64, -(2**62) - 3, "long_value"),
        (DataType.UINT64, 2**64 - 3, "long_value"),
        (DataType.DOUBLE, -27182818284.59045, "double_value"),
        (DataType.DOUBLE, math.pi, "double_value"),
        (DataType.FLOAT, 1.5, "float_value"),
        (DataType.BOOLEAN, True, "boolean_value"),
        (DataType.STRING, "PUMP-7", "string_value"),
    ],
)
def test_values_round_trip_exactly_in_their_field(datatype: DataType, value: object, field: str) -> None:
    p = Payload()
    m = p.metrics.add()
    set_value(m, datatype, value)
    back = Payload()
    back.ParseFromString(p.SerializeToString())
    assert back.metrics[0].WhichOneof("value") == field
    assert get_value(back.metrics[0], datatype) == value


def test_null_and_decoding_for_tail() -> None:
    p = Payload()
    p.timestamp, p.seq = 5, 7
    m = p.metrics.add()
    m.alias, m.timestamp = 3, 5
    set_value(m, DataType.DOUBLE, None)
    assert to_dict(p.SerializeToString()) == {
        "timestamp": 5, "seq": 7, "metrics": [{"alias": 3, "timestamp": 5, "is_null": True, "value": None}],
    }  # fmt: skip


def test_events_become_boolean_metrics_to_alarm_on() -> None:
    assert event_flags("alarm", {"feature": "x.velocity_rms_mm_s", "level": "high", "active": True}) == {
        "Alarms/x/velocity_rms_mm_s/high": True
    }
    assert event_flags(
        "temp_alarm", {"channel": "motor_de", "feature": "temp_c", "level": "high", "active": False}
    ) == {"Alarms/motor_de/temp_c/high": False}
    assert event_flags("device_fault", {"quality": "timeout"}) == {"Faults/device": True}
    assert event_flags("sensor_ok", {"channel": "*"}) == {"Faults/sensor": False}
    assert event_flags("tag_fault", {"tags": ["a"]}) == {}


def test_tail_decodes_sparkplug_and_names_data_metrics() -> None:
    from edge_agent.agent.ops.tail import decode_line

    birth = Payload()
    birth.timestamp, birth.seq = 1, 1
    m = birth.metrics.add()
    m.name, m.alias, m.datatype, m.timestamp = "x/velocity_rms_mm_s", 7, int(DataType.FLOAT), 1
    set_value(m, DataType.FLOAT, 1.84)
    data = Payload()
    data.timestamp, data.seq = 2, 2
    m = data.metrics.add()
    m.alias, m.timestamp = 7, 2
    set_value(m, DataType.FLOAT, 2.5)
    decode_line("spBv1.0/g/DBIRTH/n9/pump", birth.SerializeToString(), False)
    rec = decode_line("spBv1.0/g/DDATA/n9/pump", data.SerializeToString(), False)
    assert rec["sparkplug"] == "DDATA" and rec["seq"] == 2
    assert rec["metrics"] == [{"alias": 7, "timestamp": 2, "value": 2.5, "name": "x/velocity_rms_mm_s"}]
    state = decode_line("spBv1.0/STATE/scada", b'{"online": true, "timestamp": 3}', True)
    assert state["state"] == {"online": True, "timestamp": 3} and state["retained"] is True
    assert "error" in decode_line("spBv1.0/g/NDATA/n9", b"\xff\xff", False)


def test_lists_become_one_metric_per_element_padded_to_the_declared_length() -> None:
    from edge_agent.agent.sparkplug.device import metric_items

    got = dict(metric_items({"x": {"peaks_hz": [24.5, 49.0], "rms_g": 0.1}}, lists={"x.peaks_hz": 3}))
    assert got == {"x.peaks_hz.0": 24.5, "x.peaks_hz.1": 49.0, "x.peaks_hz.2": None, "x.rms_g": 0.1}


def test_a_value_that_does_not_fit_its_metric_type_is_null_never_an_exception() -> None:
    """Issue 24 item 5: what no declaration checked (a plugin that declares nothing) cannot stop a birth."""
    from edge_agent.agent.sparkplug.payload import DataType, Payload, set_value

    for datatype in DataType:
        for junk in ("twelve", [1, 2], {"a": 1}, object(), float("inf"), 10**30, b"\x00"):
            m = Payload().metrics.add()
            set_value(m, datatype, junk)  # must not raise
            assert m.is_null or m.WhichOneof("value") is not None


def test_a_primary_host_is_accepted_before_the_clock_is_synchronised() -> None:
    """Issue 29: a Pi boots with its last shutdown's time (here 3 days behind). Judged by that
    clock every real host's STATE is 'ahead' and the node was never born; until the clock is
    synchronised the host's own last timestamp (plus the time passed) is the measure."""
    import json
    import time
    from types import SimpleNamespace

    from edge_agent.agent.sparkplug.commands import NodeCommands

    told: list[str] = []
    node = SimpleNamespace(
        host_ts=0, host_ts_at_s=0.0, host_online=False, born=False, clock_trusted=lambda: False,
        s=SimpleNamespace(primary_host_id="scada"), event=lambda *a: told.append(a[1]), births=lambda: None,
    )  # fmt: skip
    cmds = NodeCommands(node, write=None)  # type: ignore[arg-type]
    host_now = int(time.time() * 1000) + 3 * 86_400_000  # the host's clock: 3 days ahead of ours
    state = lambda online, ts: json.dumps({"online": online, "timestamp": ts}).encode()  # noqa: E731
    cmds.on_state("spBv1.0/STATE/scada", state(True, host_now))
    assert node.host_online and node.host_ts == host_now and told == []
    cmds.on_state("spBv1.0/STATE/scada", state(False, host_now + 10 * 365 * 86_400_000))  # a forgery from the future
    assert node.host_online and told == ["state_refused"], "judged against the host's own clock"
    node.clock_trusted = lambda: True  # synchronised (and 3 days behind the host: the host is now refused)
    cmds.on_state("spBv1.0/STATE/scada", state(False, host_now + 1))
    assert node.host_online and told == ["state_refused", "state_refused"]


@pytest.mark.parametrize("q", [None, *(str(q) for q in Quality), "something_new", "\ud800" + "x" * 200])
def test_every_quality_code_becomes_bad_good_or_stale_with_our_reason_beside_it(q: str | None) -> None:
    """Sparkplug 3.0 6.4.9.1: the Quality property is an Int32 0, 192 or 500; our code (even one
    the table does not know, or a hostile string) goes in qualityReason, bounded and valid UTF-8."""
    p = Payload()
    m = p.metrics.add()
    set_properties(m, quality_properties(q, birth=False))
    back = Payload()
    back.ParseFromString(p.SerializeToString())
    props = dict(zip(back.metrics[0].properties.keys, back.metrics[0].properties.values, strict=True))
    assert props["Quality"].type == DataType.INT32 and props["Quality"].WhichOneof("value") == "int_value"
    expected = {None: 192, "good": 192, "stale": 500}.get(q, 0)
    assert props["Quality"].int_value == expected == quality_code(q)
    assert props["qualityReason"].type == DataType.STRING
    reason = props["qualityReason"].string_value
    if q is None or len(q) <= REASON_MAX_CHARS:
        assert reason == (q or "good")
    else:
        assert reason == "?" + "x" * (REASON_MAX_CHARS - 1)  # the lone surrogate replaced, then cut


def test_a_birth_of_a_good_metric_carries_quality_alone() -> None:
    assert quality_properties(None, birth=True) == {"Quality": (DataType.INT32, QualityCode.GOOD)}
    assert set(quality_properties("timeout", birth=True)) == {"Quality", "qualityReason"}


def test_the_property_rules_catch_what_a_host_would_flag() -> None:
    """tests/spb_rules.property_violations fires on each rule (a checker that passes all is no check)."""

    def check(keys: list[str], values: list[dict[str, object]]) -> list[str]:
        return property_violations("x", {"name": "m", "properties": {"keys": keys, "values": values}})

    assert check(["Quality", "engUnit", "qualityReason"], [
        {"type": 3, "intValue": 0}, {"type": 12, "stringValue": "mm/s"}, {"type": 12, "stringValue": "timeout"},
    ]) == []  # fmt: skip
    assert "not one of 0, 192, 500" in check(["Quality"], [{"type": 3, "intValue": 68}])[0]
    assert "hosts read [3]" in check(["Quality"], [{"type": 7, "intValue": 192}])[0]
    assert "hosts read [12]" in check(["engUnit"], [{"type": 3, "intValue": 1}])[0]
    assert "hosts read [11]" in check(["readOnly"], [{"type": 12, "stringValue": "yes"}])[0]
    assert "not in the field" in check(["custom"], [{"type": 10, "stringValue": "1.5"}])[0]
    assert "with type 0" in check(["custom"], [{"type": 0}])[0]
    assert "2 keys and 1 values" in check(["a", "b"], [{"type": 12, "stringValue": "x"}])[0]
