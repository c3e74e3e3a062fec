"""Messages out: the codec (MessagePack envelope), the publisher, sequence numbers that persist,
the outbox and the durable spool, and the MQTT session.

May import: agent.errors, agent.config, agent.extensions (the publisher's hooks and outputs),
agent.backoff, the contracts. Never runtime/, ops/ or devtools/."""
