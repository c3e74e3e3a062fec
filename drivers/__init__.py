"""Hardware access for edge-agent: one module per device or bus, each with a simulated backend."""
