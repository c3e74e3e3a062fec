"""The daemon's running parts: bootstrap, the Runtime, supervised instances, the one apply path,
the control surface, process isolation, systemd notify and logging set-up.

May import: agent.config, agent.messaging, agent.remote, agent.sparkplug, agent.maintenance, the
driver and plugin contracts. Never ops/ or devtools/."""
