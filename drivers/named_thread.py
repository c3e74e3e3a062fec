"""Threads whose Python name is also their OS name, so ``top -H``, ``/proc/PID/task/TID/comm`` and a
benchmark from outside the process tell the agent's threads apart (lane:pump1-de, spool-sync, ...)."""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

PR_SET_NAME = 15  # prctl(2)
OS_NAME_MAX = 15  # bytes, without the terminating NUL


def os_thread_name(name: str) -> str:
    """The name as the kernel can hold it: at most 15 bytes, keeping the start and the end of a long one."""
    raw = name.encode()
    if len(raw) <= OS_NAME_MAX:
        return name
    return raw[:9].decode(errors="ignore") + "~" + raw[-5:].decode(errors="ignore")


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


def set_os_thread_name(name: str) -> None:
    """Name the calling thread at the OS level (Linux; elsewhere nothing happens)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_NAME, os_thread_name(name).encode(), 0, 0, 0)


class NamedThread(threading.Thread):
    """A ``threading.Thread`` that gives itself its name at the OS level when it starts."""

    def run(self) -> None:
        set_os_thread_name(self.name)
        super().run()


def _name_this_thread() -> None:
    set_os_thread_name(threading.current_thread().name)


def named_executor(prefix: str = "asyncio") -> ThreadPoolExecutor:
    """A thread pool whose threads carry their names at the OS level (``asyncio_0``...): the event
    loop's default executor (``to_thread``, ``run_in_executor``), sized as asyncio sizes its own."""
    return ThreadPoolExecutor(thread_name_prefix=prefix, initializer=_name_this_thread)
