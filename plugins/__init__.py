"""What to read, when, and what to compute: plugins get a driver and an emit from the runtime."""

if __name__ != "edge_agent.plugins":  # imported as a bare name: a second copy of every module would load
    raise ImportError(
        f"edge-agent's plugins/ is the package edge_agent.plugins: import edge_agent.plugins, not {__name__} "
        "(a bare name loads a second copy of every module beside the installed one; "
        "from a checkout, install it first: make, or pip install -e .)",
        name=__name__,
    )
