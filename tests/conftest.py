"""Fixtures that start real things (a broker on a free port) and always stop them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from support import RemoteAgent, Subscriber


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
