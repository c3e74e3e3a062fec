"""Lanes: own thread, deadlines, stuck calls refused and closed after, a hard thread ceiling, and
one call behaviour shared by the runtime, the plugin harness and the conformance kit."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from edge_agent.drivers.contract import Capability, DriverSpec, Options, Values
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.lanes import Ceiling, DriverHung, Lane, Lanes, ThreadCeiling, default_deadline_s, where
from edge_agent.drivers.testing.conformance import check_driver
from edge_agent.plugins.testing.harness import Harness
from edge_agent.plugins.values.plugin import SPEC as VALUES
from support import scaled


def test_calls_run_on_one_thread_of_their_own() -> None:
    async def main() -> set[int]:
        lane = Lane("a")
        seen = {await lane.call(threading.get_ident) for _ in range(5)}
        lane.release()
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 1 and threading.get_ident() not in seen


def test_a_stuck_call_is_abandoned_refuses_new_calls_and_close_runs_after_it() -> None:
    release, order = threading.Event(), []

    def hang() -> None:
        order.append("read start")
        release.wait(10)
        order.append("read end")

    async def main() -> None:
        lane = Lane("h")
        t0 = time.monotonic()
        with pytest.raises(DriverHung, match=r"hang\(\) did not return within its 0.2 s deadline") as info:
            await lane.call(hang, deadline_s=0.2)
        assert 0.2 <= time.monotonic() - t0 < 0.2 + scaled(0.8)
        assert info.value.quality == "timeout" and info.value.at.endswith(
            f"test_lanes:{hang.__code__.co_firstlineno + 2}"
        )
        assert lane.stuck is not None and lane.stuck.call == "hang()"
        with pytest.raises(DriverHung, match="still running"):
            await lane.call(order.append, "second read")  # never started: no two calls on one device
        lane.defer(order.append, "close")
        release.set()
        assert await lane.wait_idle(5)
        await asyncio.sleep(0.05)
        assert order == ["read start", "read end", "close"]
        assert await lane.call(lambda: 42) == 42, "the lane works again once the call returned"
        lane.release()

    asyncio.run(main())


def test_restarting_a_hanging_instance_keeps_the_thread_count_flat() -> None:
    release = threading.Event()

    async def main() -> int:
        lanes = Lanes(max_threads=8)
        lane = lanes.get("bad")
        with pytest.raises(DriverHung):
            await lane.call(release.wait, 30, deadline_s=0.05)
        before = threading.active_count()
        for _ in range(100):  # what 100 restarts do: stop (release), start (get), try a call
            lanes.release("bad")
            with pytest.raises(DriverHung):
                await lanes.get("bad").call(release.wait, 30, deadline_s=0.05)
        assert lanes.stats()["lane_threads"] == 1 and len(lanes.stats()["stuck"]) == 1
        return threading.active_count() - before

    try:
        assert asyncio.run(main()) == 0
    finally:
        release.set()


def test_the_thread_ceiling_is_hard() -> None:
    ceiling = Ceiling(2)
    lanes = [Lane(f"l{i}", ceiling=ceiling) for i in range(3)]
    assert [lanes[i].call_sync(int, i) for i in range(2)] == [0, 1]
    with pytest.raises(ThreadCeiling, match="max_lane_threads"):
        lanes[2].call_sync(lambda: 2)
    lanes[0].release()
    deadline = time.monotonic() + scaled(5)
    while ceiling.threads > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lanes[2].call_sync(lambda: 2) == 2, "a released lane's thread frees its place"


def test_default_deadline_scales_with_the_interval() -> None:
    assert default_deadline_s(0.5) == 5.0 and default_deadline_s(10) == 30.0
    assert default_deadline_s(0.5, "open") == 15.0


def test_where_names_the_module_with_its_package() -> None:
    try:
        VALUES.factory(None)  # type: ignore[arg-type]
    except AttributeError as exc:
        assert where(exc.__traceback__).startswith("edge_agent.plugins.values.plugin:")


# --- issue 20 item 8: one call helper, one behaviour (runtime, Harness, conformance kit) ---------
class _O(Options):
    pass


class LoopBound:
    """An async-client style driver: open() binds the running loop, read() needs the same one."""

    def __init__(self, _opts: Any) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = 0

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def read(self) -> Values:
        if self.loop is None:
            raise DriverError("not open")
        assert asyncio.get_running_loop() is self.loop, "read() on another loop than open()"
        return Values({"v": 1.0})

    async def close(self) -> None:
        self.closed += 1


class Deferring(LoopBound):
    """Plain methods that return awaitables (a sync facade over an async client)."""

    def open(self) -> Any:  # type: ignore[override]
        return LoopBound.open(self)

    def read(self) -> Any:  # type: ignore[override]
        return LoopBound.read(self)

    def close(self) -> Any:  # type: ignore[override]
        return LoopBound.close(self)


LOOP_SPEC = DriverSpec(name="loopbound", factory=LoopBound, options=_O, provides=frozenset({Capability.VALUES}))


class Hanging:
    deadline_s = 0.3

    def __init__(self, _opts: Any) -> None:
        self.release = threading.Event()
        self.opened = False

    def open(self) -> None:
        self.opened = True

    def read(self) -> Values:
        if not self.opened:
            raise DriverError("not open")
        self.release.wait(5)
        return Values({"v": 1.0})

    def close(self) -> None:
        self.release.set()


HANG_SPEC = DriverSpec(name="hanging", factory=Hanging, options=_O, provides=frozenset({Capability.VALUES}))


def test_conformance_kit_keeps_one_loop_and_awaits_returned_awaitables() -> None:
    # before: every call got its own asyncio.run (read() on a new loop) and close()'s coroutine was dropped
    assert check_driver(LOOP_SPEC, {}) == []
    spec = DriverSpec(name="deferring", factory=Deferring, options=_O, provides=frozenset({Capability.VALUES}))
    assert check_driver(spec, {}) == []


def test_conformance_kit_reports_a_hang_instead_of_hanging() -> None:
    t0 = time.monotonic()
    problems = check_driver(HANG_SPEC, {}, read_deadline_s=0.3)
    assert time.monotonic() - t0 < 0.3 + scaled(1.7)
    assert any("read() did not return within 0.3 s" in p for p in problems), problems


def test_harness_calls_like_the_runtime() -> None:
    async def main() -> tuple[int, list[Any]]:
        drv = Deferring(None)
        h = Harness(VALUES, options={"report_by_exception": False}, driver=drv)
        await h.start()
        await h.poll()
        await h.close()  # before: the coroutine close() returned was never awaited
        hang = Hanging(None)
        h2 = Harness(VALUES, driver=hang)
        await h2.start()
        await h2.poll()  # the values plugin turns the DriverHung into a quality, as in the agent
        hang.release.set()
        return drv.closed, [(e.kind, e.fields.get("quality")) for e in h2.events]

    closed, qualities = asyncio.run(main())
    assert closed == 1
    assert qualities == [("sensor_fault", "timeout")]
