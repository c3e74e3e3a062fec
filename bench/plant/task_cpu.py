"""``--tasks``: where the agent's CPU goes by part, measured inside it with thread CPU time.

A hook in the agent (the bench's ``sitecustomize``) times every callback of the event loop (an
asyncio task's step is booked to the task's name and coroutine: ``instance:plc1`` is the plc1
instance's supervisor and plugin) and every job of every lane (``lane fan2: call()`` is the
vibration analysis, ``read()`` the driver's read) with ``time.thread_time()``, from the end of
warm-up to the stop (the bench sends SIGUSR2 at both). What no callback holds is the loop's own work:
waiting in epoll, waking up, ordering timers. Two clock reads per callback add ~3 us each, so the
figures are a little high; the shares are what counts.
"""

from __future__ import annotations

import json
from pathlib import Path

TASKS_HOOK = """
import os as _os
if _os.environ.get("EDGE_BENCH_TASKS"):
    def _edge_bench_tasks():
        import asyncio.events, collections, importlib.abc, importlib.util, json, signal, sys, threading, time
        acc = collections.defaultdict(lambda: [0.0, 0])
        lanes = collections.defaultdict(lambda: [0.0, 0])
        state = {}
        def start(signum, frame):  # the first SIGUSR2 starts the count, the second (before SIGTERM) ends it
            if "t0" in state:
                state.setdefault("t1", (time.monotonic(), time.thread_time()))
            state.setdefault("t0", (time.monotonic(), time.thread_time()))
        signal.signal(signal.SIGUSR2, start)
        def key(cb):
            owner = getattr(cb, "__self__", None)
            if isinstance(owner, asyncio.Task):
                return "task " + owner.get_name() + ": " + getattr(owner.get_coro(), "__qualname__", "?")
            fn = getattr(cb, "func", cb)
            name = getattr(fn, "__qualname__", None)
            return "callback " + (name or "writer/reader (paho loop_write)")
        run = asyncio.events.Handle._run
        def timed(self):
            if "t0" not in state or "t1" in state:
                return run(self)
            cb, c0 = self._callback, time.thread_time()
            try:
                return run(self)
            finally:
                a = acc[key(cb)]
                a[0] += time.thread_time() - c0
                a[1] += 1
        asyncio.events.Handle._run = timed
        def patch_lanes(mod):
            queue_job = mod.Lane._queue_job
            def timed_job(self, fn, args, call):
                lane = self.name
                def job(*a):
                    c0 = time.thread_time()
                    try:
                        return fn(*a)
                    finally:
                        if "t0" in state and "t1" not in state:
                            x = lanes["lane " + lane + ": " + call]
                            x[0] += time.thread_time() - c0
                            x[1] += 1
                return queue_job(self, job, args, call)
            mod.Lane._queue_job = timed_job
        class Hook(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path, target=None):
                if fullname != "edge_agent.drivers.lanes":
                    return None
                sys.meta_path.remove(self)
                spec = importlib.util.find_spec(fullname)
                exec_module = spec.loader.exec_module
                def patched(module):
                    exec_module(module)
                    patch_lanes(module)
                spec.loader.exec_module = patched
                return spec
        sys.meta_path.insert(0, Hook())
        def dump():
            if "t0" not in state:
                return
            t0, c0 = state["t0"]
            t1, c1 = state.get("t1", (time.monotonic(), time.thread_time()))
            out = {"window_s": t1 - t0, "main_cpu_s": c1 - c0,
                   "loop": {k: v for k, v in acc.items()}, "lanes": {k: v for k, v in lanes.items()}}
            with open(_os.environ["EDGE_BENCH_TASKS"], "w") as f:
                json.dump(out, f)
        if threading.current_thread() is threading.main_thread():
            atexit.register(dump)
    _edge_bench_tasks()
"""


def summarize_tasks(path: Path, top: int = 30) -> str:
    """The table of ``--tasks``: ms of CPU a second by loop callback and lane job, largest first."""
    if not path.exists():
        return "--tasks: the agent wrote no figures (did it stop cleanly after warm-up?)"
    data = json.loads(path.read_text())
    window = max(data["window_s"], 1e-9)
    loop = data["loop"]
    in_handles = sum(c for c, _ in loop.values())
    lines = [
        f"--tasks: {window:.0f} s after warm-up, thread CPU time (ms of CPU a second = 0.1 % of a core per ms/s)",
        f"main thread {1000 * data['main_cpu_s'] / window:.2f} ms/s: in loop callbacks "
        f"{1000 * in_handles / window:.2f}, the loop itself (epoll, wake-ups, timers) "
        f"{1000 * (data['main_cpu_s'] - in_handles) / window:.2f}",
        f"{'ms/s':>8} {'calls/s':>8} {'us/call':>8}  what",
    ]
    rows = sorted([*loop.items(), *data["lanes"].items()], key=lambda kv: -kv[1][0])
    for name, (cpu_s, n) in rows[:top]:
        lines.append(f"{1000 * cpu_s / window:8.3f} {n / window:8.1f} {1e6 * cpu_s / max(n, 1):8.1f}  {name}")
    return "\n".join(lines)
