"""1,000 malformed config documents: every one is answered `rejected`; the agent keeps publishing."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from edge_agent.agent.devtools.local_broker import LocalBroker
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import RemoteAgent

pytestmark = pytest.mark.slow  # one agent process and a broker for the module


def _big_strings(version: int) -> bytes:
    inst = {"name": "x" * 10, "plugin": "values", "driver": {"type": "sim", "x": "y" * 20_000}}
    return msgpack.packb({"version": version, "config": {"instances": [inst]}})


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=50),
    st.binary(max_size=50),
)
nested = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=40,
)
bad_version = st.one_of(st.none(), st.text(max_size=5), st.floats(), st.integers(-(2**63), 0), st.lists(scalars))
bad_instance = st.fixed_dictionaries(
    {
        "name": st.one_of(st.text(max_size=70), st.integers(-5, 5)),
        "plugin": st.one_of(st.text(max_size=10), st.none()),
        "interval_s": st.one_of(st.floats(max_value=0), st.text(max_size=3)),
    }
)
documents = st.one_of(
    st.binary(max_size=300),  # not MessagePack, or truncated
    nested.map(lambda x: msgpack.packb([x])),  # MessagePack that is not a push (not a map)
    st.fixed_dictionaries({"version": bad_version, "config": nested}).map(msgpack.packb),
    st.fixed_dictionaries(
        {
            "version": st.integers(2, 10**6),
            "config": st.fixed_dictionaries({"instances": st.lists(bad_instance, min_size=1, max_size=5)}),
        }
    ).map(msgpack.packb),
    st.integers(2, 10).map(_big_strings),
    st.integers(1, 3000).map(lambda n: b"\x91" * n + b"\xc0"),  # deep nesting
    st.binary(min_size=1, max_size=40).map(lambda b: b'{"version": 3, "config": {"a": "' + b"\xff" + b + b'"}}'),
)


@pytest.fixture(scope="module")
def fuzz_agent() -> Iterator[RemoteAgent]:
    with tempfile.TemporaryDirectory() as tmp, LocalBroker() as broker:
        a = RemoteAgent(Path(tmp), broker)
        try:
            yield a
        finally:
            a.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(payload=documents)
@example(payload=msgpack.packb({"version": 0, "config": {}}))  # was answered already_applied
def test_malformed_documents_are_all_rejected(fuzz_agent: RemoteAgent, payload: bytes) -> None:
    time.sleep(1 / 40)  # below the agent's inbound limit (50/s per topic): a push past it is shed unanswered
    answer: dict[str, Any] = fuzz_agent.push(None, raw=payload)
    assert answer["status"] == "rejected", answer
    assert answer["errors"] and all(isinstance(e, str) for e in answer["errors"])


def test_agent_alive_and_publishing_after_the_fuzz(fuzz_agent: RemoteAgent) -> None:
    n = len(fuzz_agent.sub.on("edge/t1/data/steady"))
    fuzz_agent.sub.wait_for(lambda: len(fuzz_agent.sub.on("edge/t1/data/steady")) > n + 3, 5, "still publishing")
    assert fuzz_agent.proc.proc.poll() is None
