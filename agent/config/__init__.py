"""Configuration: the schema and loading of the TOML file, validation with error paths, the
local/pushed layers, declared values, the registry of drivers and plugins (entry points).

May import: agent.errors, agent.sparkplug.settings, agent.history.settings, the driver and plugin contracts."""
