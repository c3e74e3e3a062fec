"""edge-agent core: the daemon (runtime, config, messaging, remote, sparkplug, maintenance), ops/ and devtools/."""

if __name__ != "edge_agent.agent":  # imported as a bare name: a second copy of every module would load
    raise ImportError(
        f"edge-agent's agent/ is the package edge_agent.agent: import edge_agent.agent, not {__name__} "
        "(a bare name loads a second copy of every module beside the installed one; "
        "from a checkout, install it first: make, or pip install -e .)",
        name=__name__,
    )

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-agent")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
