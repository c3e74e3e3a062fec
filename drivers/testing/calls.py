"""Call a driver method, plain or ``async def``, off the caller's thread with a deadline.

A plain method runs in a fresh daemon thread per call, so a call that never returns costs that
thread only; ``async def`` methods run on one event loop thread kept for the caller's life (an
asyncio client opened in ``open`` must be read on the same loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any


class DeadlineExceeded(Exception):
    """The call did not return in time (it may still be running)."""


class Caller:
    """``call(fn, deadline_s)`` runs fn and returns its result or raises its exception."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _loop_thread(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="conformance-loop", daemon=True)
            self._thread.start()
        return self._loop

    def __call__(self, fn: Callable[[], Any], deadline_s: float) -> Any:
        name = getattr(fn, "__qualname__", repr(fn))
        if inspect.iscoroutinefunction(fn):
            fut = asyncio.run_coroutine_threadsafe(fn(), self._loop_thread())
            done, _ = concurrent.futures.wait([fut], timeout=deadline_s)
            if not done:
                fut.cancel()
                raise DeadlineExceeded(f"{name}() did not return within {deadline_s} s")
            return fut.result()
        box: dict[str, Any] = {}
        finished = threading.Event()

        def work() -> None:
            try:
                box["result"] = fn()
            except BaseException as exc:  # handed to the caller
                box["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=work, name=f"conformance-{name}", daemon=True).start()
        if not finished.wait(deadline_s):
            raise DeadlineExceeded(f"{name}() did not return within {deadline_s} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def close(self) -> None:
        """Stop the event loop thread (if one was started)."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=2)
            if not self._thread.is_alive():
                self._loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
