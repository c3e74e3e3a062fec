"""The agent's error hierarchy: one root, mixed with builtins where it helps."""

from __future__ import annotations

from edge_agent.drivers.contract import ContractError


class AgentError(Exception):
    """Root of every error the agent raises on purpose."""


class ConfigError(AgentError, ValueError):
    """A configuration is invalid; ``errors`` holds every problem as "path: message"."""

    def __init__(self, errors: list[str], source: str = "config") -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(errors))


class RegistryError(AgentError, ContractError):
    """A plugin or driver could not be loaded (the contract checks raise ContractError, its base)."""


class CodecError(AgentError, ValueError):
    """A payload is not a valid edge-agent envelope."""
