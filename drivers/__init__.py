"""Hardware access for edge-agent: one package per device or bus, each with a simulated backend."""

if __name__ != "edge_agent.drivers":  # imported as a bare name: a second copy of every module would load
    raise ImportError(
        f"edge-agent's drivers/ is the package edge_agent.drivers: import edge_agent.drivers, not {__name__} "
        "(a bare name loads a second copy of every module beside the installed one; "
        "from a checkout, install it first: make, or pip install -e .)",
        name=__name__,
    )
