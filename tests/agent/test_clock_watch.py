"""The clock watch: wall-clock steps become one clock_step event each, and an unsynchronised clock
marks every envelope ``"tq": "unsynced"``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent import clock_watch
from edge_agent.agent.clock_watch import ClockWatch
from edge_agent.agent.messaging import codec


class Events:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, instance: str, kind: str, msg: str, severity: Any, fields: dict[str, Any]) -> None:
        self.got.append((kind, fields | {"msg": msg}))


def test_steps_forward_and_back_are_events_and_slewing_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = [1_000_000.0]
    mono = [50.0]
    monkeypatch.setattr(time, "time", lambda: wall[0])
    monkeypatch.setattr(time, "monotonic", lambda: mono[0])
    events = Events()
    watch = ClockWatch(events, is_synced=lambda: True)
    for step_s in (0.0, 0.4, -3600.0, 3 * 3600.0, 3 * 86400.0):
        mono[0] += 1.0
        wall[0] += 1.0 + step_s
        watch.check()
    kinds = [k for k, _ in events.got]
    assert kinds == ["clock_step"] * 3, "a slew of 0.4 s is no step"
    assert [f["step_s"] for _, f in events.got] == [-3600.0, 10800.0, 259200.0]
    assert [f["msg"].split("by ")[1] for _, f in events.got] == ["1 h 0 min", "3 h 0 min", "3 d 0 h"]
    assert all(abs(f["to_ms"] - f["from_ms"] - f["step_s"] * 1000) <= 1 for _, f in events.got)


def test_unsynchronised_until_the_system_says_so() -> None:
    synced: list[bool | None] = [False]
    watch = ClockWatch(Events(), is_synced=lambda: synced[0])
    assert not watch.trusted
    synced[0] = None  # cannot tell: no mark
    watch.check()
    assert watch.trusted
    synced[0] = False
    watch.check()
    assert not watch.trusted
    assert ClockWatch(Events(), mode="trust", is_synced=lambda: False).trusted


def test_the_envelope_says_tq_only_when_unsynced() -> None:
    assert "tq" not in codec.decode(codec.encode({"x": 1}, ts_ms=1, seq=1))
    assert codec.decode(codec.encode({"x": 1}, ts_ms=1, seq=1, tq=codec.TQ_UNSYNCED))["tq"] == "unsynced"


def test_the_kernel_state_is_read_without_changing_it() -> None:
    assert clock_watch.kernel_synchronised() in (True, False, None)  # read-only adjtimex, any machine


def test_under_the_hardened_unit_timesyncd_without_its_flag_is_not_synchronised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ProtectClock=yes refuses even a read-only adjtimex (EPERM): the kernel cannot tell. Then a
    timesyncd that has not written its flag means a clock not synchronised yet (a Pi before NTP)."""
    monkeypatch.setattr(clock_watch, "kernel_synchronised", lambda: None)
    flag, binary = tmp_path / "synchronized", tmp_path / "systemd-timesyncd"
    assert clock_watch.synchronised(flag, (tmp_path / "absent",)) is None, "no timesyncd, no kernel: cannot tell"
    binary.touch()
    assert clock_watch.synchronised(flag, (binary,)) is False
    flag.touch()
    assert clock_watch.synchronised(flag, (binary,)) is True
