"""The ``temperature`` plugin: thermocouples and RTDs to temperatures with quality, trends and alarms.

- :mod:`plugins.temperature.its90`: NIST ITS-90 thermocouple functions (pure)
- :mod:`plugins.temperature.rtd`: Callendar-Van Dusen for Pt100/Pt1000 (pure)
- :mod:`plugins.common.trend` (shared with ``thermal``): rate of change, time to threshold, stuck, spikes (pure)
- :mod:`plugins.temperature.channel`: one channel's filter, health and trend state
- :mod:`plugins.temperature.plugin`: the plugin (``SPEC``)
"""

from edge_agent.plugins.temperature.plugin import SPEC

__all__ = ["SPEC"]
