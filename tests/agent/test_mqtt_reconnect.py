"""After a broker outage the subscriptions' connection (``<id>-in``, clean session) comes back with the
main one instead of after its own backoff: bench.soak found a ``cmd restart`` and a push sent 6-14 s
after a 50-s outage lost without an answer, because the inbound connection was still backing off."""

from __future__ import annotations

import asyncio


def test_the_inbound_connection_retries_as_soon_as_the_main_one_is_back() -> None:
    asyncio.run(_inbound_follows_main())


async def _inbound_follows_main() -> None:
    from edge_agent.agent.messaging.mqtt_session import MqttSession, SessionOptions
    from edge_agent.agent.messaging.outbox import MemoryOutbox

    session = MqttSession(SessionOptions(url="mqtt://127.0.0.1:1", client_id="t", subscriptions={}), MemoryOutbox(10))
    inbound = asyncio.get_running_loop().create_task(session._pause(3600.0, main=False))
    main = asyncio.get_running_loop().create_task(session._pause(3600.0, main=True))
    await asyncio.sleep(0.05)
    assert not inbound.done(), "the inbound connection backs off while the broker is away"
    session.connected.set()  # the main connection is back
    await asyncio.wait_for(inbound, 30)  # an hour's backoff cut short
    assert not main.done(), "the main connection keeps its own backoff"
    main.cancel()
