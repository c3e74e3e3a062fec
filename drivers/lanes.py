"""Lanes: every instance's blocking driver calls run on a thread of its own, each call with a deadline.

One helper, one behaviour, used by the runtime, the plugin test harness and the conformance kit:

- a plain function runs on the lane's thread (created on first use, one per lane, kept across
  restarts of the instance); an awaitable it returns is awaited as well;
- a coroutine function runs on an event loop: the caller's in :meth:`Lane.call`, the lane's own
  (one persistent loop in the lane's thread, so a client opened in ``open()`` still works in
  ``read()``) in :meth:`Lane.call_sync`;
- every call has a deadline (the driver may declare ``deadline_s``, a number or a map by method
  name; otherwise :func:`default_deadline_s` from the interval). A plain call past its deadline is
  *abandoned*: :class:`DriverHung` is raised, the lane is *stuck* and refuses new calls
  (raising :class:`DriverHung` at once) until the abandoned call returns, so two calls never run
  on one device at once. Calls queued with :meth:`Lane.defer` (a deferred ``close()``) run after it.

Threads have a hard ceiling (:class:`Ceiling`): a lane that would need one more refuses with
:class:`ThreadCeiling`. Imports: nothing of ours beyond ``drivers.errors``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import inspect
import logging
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.drivers.contract import valid_deadline_s
from edge_agent.drivers.errors import DriverError
from edge_agent.drivers.named_thread import NamedThread

log = logging.getLogger("edge_agent.lanes")

_SKIP_MODULES = ("edge_agent.drivers.lanes", "edge_agent.agent.runtime.supervisor", "edge_agent.plugins.contract")


class DriverHung(DriverError, TimeoutError):
    """A driver call did not return within its deadline (or the lane is still stuck in one)."""

    quality = "timeout"

    def __init__(self, message: str, *, call: str = "", waited_s: float = 0.0, at: str = "") -> None:
        super().__init__(message)
        self.call, self.waited_s, self.at = call, waited_s, at


class ThreadCeiling(DriverError):
    """No thread left under the agent's hard ceiling for one more lane."""

    quality = "device_busy"


def default_deadline_s(interval_s: float, method: str = "read") -> float:
    """Deadline of a call when the driver declares none: 3 intervals, at least 5 s (15 s for open/close)."""
    floor = 5.0 if method == "read" else 15.0
    return min(600.0, max(floor, 3.0 * interval_s))


def deadline_for(driver: Any, method: str, interval_s: float) -> float:
    """The deadline a driver declares for ``method`` (``deadline_s``: number or map), else the default."""
    # getattr, not isinstance(driver, contract.DeclaresDeadlines): a runtime Protocol check costs ~30 us, every call
    declared = getattr(driver, "deadline_s", None)
    if isinstance(declared, Mapping):
        declared = declared.get(method)
    if valid_deadline_s(declared):
        return float(declared)
    return default_deadline_s(interval_s, method)


def where(frames: types.TracebackType | types.FrameType | None) -> str:
    """``package.module:line`` of the innermost frame that is not the standard library or our plumbing."""
    found = ""
    if isinstance(frames, types.TracebackType):
        seq = [(tb.tb_frame, tb.tb_lineno) for tb in _walk_tb(frames)]
    else:
        seq = []
        f = frames
        while f is not None:
            seq.append((f, f.f_lineno))
            f = f.f_back
        seq.reverse()
    for frame, line in seq:
        mod = str(frame.f_globals.get("__name__", "?"))
        if mod.startswith(_SKIP_MODULES) or mod.split(".", 1)[0] in sys.stdlib_module_names:
            continue
        found = f"{mod}:{line}"
    return found


def _walk_tb(tb: types.TracebackType | None) -> list[types.TracebackType]:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


def call_name(fn: Callable[..., Any]) -> str:
    """``read()`` for a bound method, ``snapshot()`` for a function: how events name a call."""
    return f"{getattr(fn, '__name__', type(fn).__name__)}()"


class Ceiling:
    """A hard ceiling on lane threads, shared by all lanes of a process."""

    def __init__(self, max_threads: int = 64) -> None:
        self.max_threads = max_threads
        self.threads = 0
        self._lock = threading.Lock()

    def acquire(self, lane: str) -> None:
        with self._lock:
            if self.threads >= self.max_threads:
                raise ThreadCeiling(
                    f"lane {lane!r}: no thread left ({self.threads} lane threads in use, the ceiling is "
                    f"{self.max_threads}: [agent] max_lane_threads); stuck calls hold theirs until they return"
                )
            self.threads += 1

    def release(self) -> None:
        with self._lock:
            self.threads -= 1


@dataclass
class StuckCall:
    """A call whose caller gave up; the lane's thread is still in it."""

    call: str
    since: float  # time.monotonic() when the call started
    deadline_s: float
    thread_id: int | None
    cpu0: float = 0.0  # the lane thread's CPU time when the call started
    reported: bool = False  # one driver_hung event per episode, even across restarts of the instance

    def at(self) -> str:
        """Where the stuck thread is right now (``package.module:line``)."""
        frame = sys._current_frames().get(self.thread_id) if self.thread_id is not None else None
        return where(frame)

    def for_s(self) -> float:
        return time.monotonic() - self.since

    def cpu_share(self) -> float | None:
        """CPU time of the stuck thread / wall time since the call started (~1.0: a busy loop)."""
        try:
            cpu = time.clock_gettime(time.pthread_getcpuclockid(self.thread_id or 0))
        except (OSError, AttributeError, OverflowError):
            return None
        return max(0.0, cpu - self.cpu0) / max(1e-3, self.for_s())


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: cf.Future[Any] = field(default_factory=cf.Future)
    call: str = ""
    started: float = 0.0
    cpu0: float = 0.0


class Lane:
    """One instance's own thread for driver calls, with deadlines; see the module docstring."""

    def __init__(self, name: str, *, ceiling: Ceiling | None = None, deadline_s: float = 15.0) -> None:
        self.name = name
        self.ceiling = ceiling
        self.deadline_s = deadline_s  # used when a call passes none
        self.calls = 0
        self.stuck: StuckCall | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._current: _Job | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the lane thread's own loop (call_sync)
        self._release = False

    # --- the two ways to call -------------------------------------------------------------
    async def call(
        self, fn: Callable[..., Any], *args: Any, deadline_s: float | None = None, name: str | None = None
    ) -> Any:
        """Run ``fn(*args)`` under the lane's rules from a coroutine; DriverHung past the deadline.
        ``name`` is how events name the call (default ``fn``'s name: ``read()``)."""
        deadline = deadline_s or self.deadline_s
        self._refuse_if_stuck()
        self.calls += 1
        t0 = time.monotonic()
        job: _Job | None = None
        try:
            async with asyncio.timeout(deadline):
                if inspect.iscoroutinefunction(fn):
                    return await fn(*args)
                job = self._queue_job(fn, args, name or call_name(fn))
                result = await asyncio.wrap_future(job.future)
                if inspect.isawaitable(result):
                    result = await result
                return result
        except TimeoutError as exc:
            if isinstance(exc, DriverError):
                raise
            raise self._abandon(job, name or call_name(fn), deadline, time.monotonic() - t0) from None
        except asyncio.CancelledError:
            self._abandon(
                job, name or call_name(fn), deadline, time.monotonic() - t0
            )  # a stop must not let a new call in
            raise

    def call_sync(self, fn: Callable[..., Any], *args: Any, deadline_s: float | None = None) -> Any:
        """Run ``fn(*args)`` under the lane's rules from plain code (the conformance kit)."""
        deadline = deadline_s or self.deadline_s
        self._refuse_if_stuck()
        self.calls += 1
        t0 = time.monotonic()
        job = self._queue_job(self._in_lane_thread, (fn, *args), call_name(fn))
        try:
            return job.future.result(timeout=deadline)
        except cf.TimeoutError:
            raise self._abandon(job, call_name(fn), deadline, time.monotonic() - t0) from None

    def _in_lane_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        # coroutines run on the lane thread's own persistent loop; an awaitable result is awaited there
        if inspect.iscoroutinefunction(fn):
            return self._own_loop().run_until_complete(fn(*args))
        result = fn(*args)
        return self._own_loop().run_until_complete(_await(result)) if inspect.isawaitable(result) else result

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn`` to run after whatever the lane runs now (a ``close()`` after a stuck read)."""
        job = self._queue_job(self._in_lane_thread, (fn, *args), call_name(fn))
        job.future.add_done_callback(_log_failure(self.name, job.call))

    # --- state ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._current is not None

    async def wait_idle(self, timeout_s: float | None = None, poll_s: float = 0.05) -> bool:
        """Wait (bounded) until no abandoned call is left; True if the lane is free."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while self.stuck is not None:
            if end is not None and time.monotonic() >= end:
                return False
            await asyncio.sleep(poll_s)
        return True

    def release(self) -> None:
        """The instance is gone: end the thread once nothing runs (at once if idle)."""
        with self._lock:
            self._release = True
            if self._thread is not None and self._current is None:
                self._queue.put(None)

    def keep(self) -> None:
        """The instance is back (restart, re-added): cancel a pending :meth:`release`."""
        with self._lock:
            self._release = False

    @property
    def alive(self) -> bool:
        return self._thread is not None

    # --- internals -----------------------------------------------------------------------
    def _refuse_if_stuck(self) -> None:
        stuck = self.stuck
        if stuck is not None:
            raise DriverHung(
                f"{stuck.call} is still running after {stuck.for_s():.1f} s; no new call until it returns",
                call=stuck.call,
                waited_s=stuck.for_s(),
                at=stuck.at(),
            )

    def _abandon(self, job: _Job | None, call: str, deadline: float, waited: float) -> DriverHung:
        with self._lock:  # the worker clears ``stuck`` under the same lock when the call returns
            if job is not None and job is self._current and self.stuck is None:
                ident = self._thread.ident if self._thread is not None else None
                self.stuck = StuckCall(job.call, job.started, deadline, ident, job.cpu0)
        stuck = self.stuck
        return DriverHung(
            f"{call} did not return within its {deadline:g} s deadline",
            call=call,
            waited_s=waited,
            at=stuck.at() if stuck is not None else "",
        )

    def _queue_job(self, fn: Callable[..., Any], args: tuple[Any, ...], call: str) -> _Job:
        job = _Job(fn, args, call=call)
        with self._lock:
            self._release = False
            if self._thread is None:
                if self.ceiling is not None:
                    self.ceiling.acquire(self.name)
                self._thread = NamedThread(target=self._work, name=f"lane:{self.name}", daemon=True)
                self._thread.start()
            self._queue.put(job)
        return job

    def _work(self) -> None:
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    with self._lock:
                        if self._release and self._queue.empty():
                            self._thread = None
                            return
                    continue
                if not job.future.set_running_or_notify_cancel():
                    continue
                with self._lock:
                    job.started, job.cpu0 = time.monotonic(), time.thread_time()
                    self._current = job
                try:
                    job.future.set_result(job.fn(*job.args))
                except BaseException as exc:  # the caller (or the deferred-call logger) sees it
                    job.future.set_exception(exc)
                finally:
                    with self._lock:
                        self._current = None
                        self.stuck = None
                        if self._release and self._queue.empty():
                            self._queue.put(None)
        finally:
            if self._loop is not None:
                self._loop.close()
            if self.ceiling is not None:
                self.ceiling.release()


async def _await(aw: Any) -> Any:
    return await aw


def _log_failure(lane: str, call: str) -> Callable[[cf.Future[Any]], None]:
    def done(fut: cf.Future[Any]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("lane %s: deferred %s failed: %s", lane, call, fut.exception())

    return done


class Lanes:
    """The lanes of one process, by instance name, under one thread ceiling."""

    def __init__(self, max_threads: int = 64) -> None:
        self.ceiling = Ceiling(max_threads)
        self._lanes: dict[str, Lane] = {}

    def get(self, name: str) -> Lane:
        """The lane of ``name``: the same one across restarts, so a stuck call is never forgotten."""
        self._prune()
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = Lane(name, ceiling=self.ceiling)
        lane.keep()
        return lane

    def release(self, name: str) -> None:
        """The instance is gone for good: its lane's thread ends when its last call returns."""
        lane = self._lanes.get(name)
        if lane is not None:
            lane.release()

    def _prune(self) -> None:
        for name, lane in list(self._lanes.items()):
            if lane._release and not lane.alive:
                del self._lanes[name]

    def stats(self) -> dict[str, Any]:
        """Threads, lanes and stuck calls, for ``status``."""
        self._prune()
        stuck = {
            n: {"call": s.call, "for_s": round(s.for_s(), 1), "at": s.at()}
            for n, lane in self._lanes.items()
            if (s := lane.stuck) is not None
        }
        return {
            "threads": threading.active_count(),
            "lane_threads": self.ceiling.threads,
            "max_lane_threads": self.ceiling.max_threads,
            "lanes": len(self._lanes),
            "stuck": stuck,
        }
