"""The ``plc`` plugin: publish PLC tags by exception, report faults once per episode, write tags."""

from edge_agent.plugins.plc.plugin import SPEC

__all__ = ["SPEC"]
