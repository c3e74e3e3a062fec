"""The daemon's running parts: bootstrap (builds every part and registers the extension points of
agent/extensions.py), the Runtime (life cycle), the running instances, reporting, the supervised
instance, the one apply path, the control surface, process isolation, systemd notify and logging.

May import: agent.config, agent.messaging, agent.remote, agent.sparkplug, agent.maintenance,
agent.history, agent.alarms, agent.extensions and the other top-level helpers of agent/, the
driver and plugin contracts. Never ops/ or devtools/."""
