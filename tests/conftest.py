"""Fixtures that start real things (a broker on a free port) and always stop them, and the `slow` marker.

`slow` marks every test that starts a broker, a subprocess, a server or a pty: `make test-fast`
(``pytest -m "not slow"``) leaves those out. A test that uses one of the fixtures below is marked
by itself; any other such test carries ``@pytest.mark.slow`` (or its module a ``pytestmark``). In a
``-m "not slow"`` run, an unmarked test that starts a process, opens a pty or listens on a socket
fails and says so, so the fast run stays fast.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_agent.agent.devtools import local_broker
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import TIME_FACTOR, RemoteAgent, Subscriber

_any_free_port = local_broker.free_port


def _this_workers_free_port() -> int:
    """A free port that only this xdist worker is handed (port // 2 modulo the worker count).

    Under `pytest -n N` two workers can never get the same port between one asking and its broker
    binding it; with no xdist this is free_port() itself. (Halved: Linux hands bind() even ports.)
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    while (port := _any_free_port()) // 2 % workers != worker:
        pass
    return port


local_broker.free_port = _this_workers_free_port  # before the test modules import it

SLOW = "slow"
STARTS_THINGS = frozenset({"broker", "subscriber", "agent"})  # the fixtures below: a broker or an agent process


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    """mosquitto on a free 127.0.0.1 port (the embedded broker where mosquitto is absent)."""
    b = LocalBroker().start()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def subscriber(broker: LocalBroker) -> Iterator[Subscriber]:
    s = Subscriber(broker.url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def agent(tmp_path: Path, broker: LocalBroker) -> Iterator[RemoteAgent]:
    """A real agent process on support.BASE with remote config enabled, and its subscriber."""
    a = RemoteAgent(tmp_path, broker)
    try:
        yield a
    finally:
        a.close()


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that uses a fixture starting a broker or a process."""
    for item in items:
        if STARTS_THINGS & set(getattr(item, "fixturenames", ())):
            item.add_marker(SLOW)


# -- the guard of the fast run ---------------------------------------------------------------------
_started: list[str] = []  # what the running test (and its fixtures) started, in a "not slow" run


def _noting(what: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, noting `what` in _started first (the call itself goes ahead)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _started.append(what)
        return real(*args, **kwargs)

    return wrapper


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads its setting
def pytest_configure(config: pytest.Config) -> None:
    """Scale the per-test timeout to this machine; in a fast run, watch what tests start."""
    if config.getoption("timeout", None) is None and config.getini("timeout"):
        config.option.timeout = float(config.getini("timeout")) * TIME_FACTOR
    _guard_fast_run(config)


def _guard_fast_run(config: pytest.Config) -> None:
    """In a fast run (-m "not slow"), note every process, pty and listening socket a test starts."""
    if f"not {SLOW}" not in (config.getoption("markexpr", "") or ""):
        return
    subprocess.Popen.__init__ = _noting("a subprocess", subprocess.Popen.__init__)  # type: ignore[method-assign]
    os.openpty = _noting("a pty", os.openpty)
    os.fork = _noting("a forked process", os.fork)
    socket.socket.listen = _noting("a listening socket (a server)", socket.socket.listen)  # type: ignore[method-assign]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """What a test's fixtures start counts as the test's."""
    _started.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test that started a process, pty or server without the `slow` marker."""
    result = yield
    if _started and item.get_closest_marker(SLOW) is None:
        what = ", ".join(sorted(set(_started)))
        raise pytest.fail.Exception(f"this test starts {what}: mark it @pytest.mark.{SLOW} (see tests/conftest.py)")
    return result
