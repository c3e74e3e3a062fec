"""Sparkplug B 3.0 edge node: the agent as an Edge Node, each instance a Device (docs/sparkplug.md)."""
