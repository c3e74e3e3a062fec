"""Declared values: specs compute them from options; the agent resolves one instance's."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from edge_agent.agent.config.declared_values import declared, declared_values, find, key_matches, undeclared
from edge_agent.agent.config.registry import Registry, load_registry
from edge_agent.agent.config.schema import build
from edge_agent.agent.errors import ConfigError
from edge_agent.drivers.contract import Capability, DType, ValueRef, ValueSpec
from edge_agent.drivers.dotted_keys import flatten
from edge_agent.drivers.sim.driver import SPEC as SIM
from edge_agent.plugins.contract import Options, Plugin, PluginSpec


def _instance(table: dict[str, object]):  # type: ignore[no-untyped-def]
    cfg = build({"instances": [{"name": "i", **table}]}, load_registry())
    return cfg.instances[0]


def test_sim_values_are_one_float_per_channel_named_from_the_prefix() -> None:
    inst = _instance({"plugin": "values", "driver": {"type": "sim", "channels": 3, "prefix": "t"}})
    values = declared_values(inst, load_registry())
    assert [v.key for v in values] == ["t0", "t1", "t2"]
    assert {v.dtype for v in values} == {DType.FLOAT32}


def test_modbus_tags_declare_dtype_unit_and_writable_from_the_tag_map() -> None:
    tags = [
        {"name": "speed", "address": 0, "type": "float32", "unit": "rpm"},
        {"name": "count", "address": 2, "type": "uint32"},
        {"name": "temp", "address": 4, "type": "int16", "scale": 0.1, "unit": "degC"},
        {"name": "total", "address": 5, "type": "uint32", "scale": 0.1},
        {"name": "run", "table": "coil", "address": 0, "type": "bool", "writable": True},
        {"name": "sp", "address": 8, "type": "float64", "writable": True},
        {"name": "recipe", "address": 12, "type": "string", "length": 4},
    ]
    inst = _instance({"plugin": "plc", "driver": {"type": "modbus", "backend": "sim", "tags": tags}})
    got = {v.key: v for v in declared_values(inst)}
    assert {k: v.dtype for k, v in got.items()} == {
        "speed": DType.FLOAT32,
        "count": DType.INT,
        "temp": DType.FLOAT32,
        "total": DType.FLOAT64,
        "run": DType.BOOL,
        "sp": DType.FLOAT64,
        "recipe": DType.STR,
    }
    assert got["speed"].unit == "rpm" and got["temp"].unit == "degC"
    assert [k for k, v in got.items() if v.writable] == ["run", "sp"]


def test_a_plugin_without_a_declaration_declares_nothing() -> None:
    inst = _instance({"plugin": "values", "driver": {"type": "sim"}})
    assert declared(inst) is not None
    undeclared_plugin = type(inst.plugin)(**{**vars(inst.plugin), "values": None})
    assert declared(type(inst)(**{**vars(inst), "plugin": undeclared_plugin})) is None


def test_wildcards_flatten_and_dtype_checks() -> None:
    specs = [ValueSpec("x.rms_g", DType.FLOAT32), ValueSpec("instances.*.polls", DType.INT)]
    assert key_matches("instances.*.polls", "instances.pump-1.polls")
    assert not key_matches("instances.*.polls", "instances.polls")
    assert find(specs, "instances.a.polls") is specs[1]
    assert flatten({"x": {"rms_g": 1.5}, "n": 1}) == {"x.rms_g": 1.5, "n": 1}
    d = {"x": {"rms_g": 1.5, "peak": 2.0}, "instances": {"a": {"polls": "many"}}}
    assert undeclared(specs, d) == [
        "x.peak: emitted but not declared",
        "instances.a.polls: declared int, emitted str 'many'",
    ]
    assert undeclared(specs, {"x": {"rms_g": None}}) == []  # a bad value travels as null


class ClimateOptions(Options):
    humidity_key: str = "humidity"


def _climate_values(o: ClimateOptions, driver: Sequence[ValueSpec]) -> list[ValueSpec]:
    by_key = {v.key: v for v in driver}
    return [ValueSpec("dew_point_c", DType.FLOAT32, "degC"), by_key["temperature"]]  # KeyError if absent


CLIMATE = PluginSpec(
    name="climate",
    factory=Plugin,
    options=ClimateOptions,
    requires=Capability.VALUES,
    values=_climate_values,
    references=lambda o: [ValueRef("humidity_key", o.humidity_key, driver=True, numeric=True)],
)


def test_a_plugin_needing_keys_the_driver_does_not_declare_fails_check_config() -> None:
    reg = Registry()
    reg.add_driver(SIM)
    reg.add_plugin(CLIMATE)
    with pytest.raises(ConfigError) as info:
        build({"instances": [{"name": "c", "plugin": "climate", "driver": {"type": "sim"}}]}, reg)
    assert info.value.errors == [
        'instances["c"]: plugin "climate" does not work with what driver "sim" returns '
        "(KeyError: 'temperature'; the driver declares: ch0)",
        'instances["c"].options.humidity_key: "humidity" is not a value of driver "sim" (declared: ch0)',
    ]
    ok = {"name": "c", "plugin": "climate", "driver": {"type": "sim", "channels": 1, "prefix": "temperature"}}
    with pytest.raises(ConfigError) as info:
        build({"instances": [ok]}, reg)  # "temperature0", not "temperature"
    assert "KeyError: 'temperature'" in info.value.errors[0]
