"""NamedThread: a thread's Python name is also its OS name (what top -H and the plant bench read)."""

from __future__ import annotations

import sys
import threading

import pytest
from edge_agent.drivers.named_thread import NamedThread, named_executor, os_thread_name


def test_long_names_keep_their_start_and_end_within_15_bytes() -> None:
    assert os_thread_name("spool-sync") == "spool-sync"
    assert os_thread_name("lane:pump1-de-bearing") == "lane:pump~aring"
    assert len(os_thread_name("lane:ünïcödé-nämé-x").encode()) <= 15


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_the_os_sees_the_name() -> None:
    seen: list[str] = []

    def look() -> None:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            seen.append(f.read().strip())

    t = NamedThread(target=look, name="lane:boiler-feed-pump")
    t.start()
    t.join()
    assert seen == [os_thread_name("lane:boiler-feed-pump")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_the_executor_names_its_threads() -> None:
    def comm() -> str:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
            return f.read().strip()

    with named_executor("pool") as pool:
        assert pool.submit(comm).result() == "pool_0"
