"""The technician's panel: a web page served by its own process (edge-agent panel)."""
