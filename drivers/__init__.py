"""Hardware access for edge-agent: one package per device or bus, each with a simulated backend."""
