"""Sparkplug B 3.0 edge node: the agent as an Edge Node, each instance a Device (docs/sparkplug.md),
registered at bootstrap as an output, an instance listener and a service (agent/extensions.py).
May import: agent.messaging, agent.bounds, the contracts. Never runtime/, ops/ or devtools/."""
