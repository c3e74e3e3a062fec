"""Simulated hardware served from outside the agent (``edge-agent plantsim``) and the physical
models shared by simulated backends."""
