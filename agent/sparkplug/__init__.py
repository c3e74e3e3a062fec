"""Sparkplug B 3.0 edge node: the agent as an Edge Node, each instance a Device (docs/sparkplug.md),
an output of the publisher beside the native topics.
May import: agent.messaging, agent.bounds, the contracts. Never runtime/, ops/ or devtools/."""
