"""Test tools for plugin authors, shipped in the package (no broker needed).

* :class:`PluginConformance`: subclass it in your tests to run the whole plugin conformance kit.
* :class:`Harness`: run a plugin the way the runtime does, with a manual clock; what it emitted
  and raised is recorded (:class:`Emitted`, :class:`Event`).
* :func:`check_plugin`: the conformance checks as a function returning the problems.
"""

from __future__ import annotations

from edge_agent.plugins.testing.conformance import check_plugin
from edge_agent.plugins.testing.harness import Emitted, Event, Harness, ManualClock, StaticLink
from edge_agent.plugins.testing.kit import PluginConformance

__all__ = ["Emitted", "Event", "Harness", "ManualClock", "PluginConformance", "StaticLink", "check_plugin"]
