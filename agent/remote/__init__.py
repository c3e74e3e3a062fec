"""Remote control over MQTT: config pushes and desired state, commands, signatures.

May import: agent.config, agent.messaging, agent.errors; it reaches the runtime only through
the protocols of agent.runtime.control."""
