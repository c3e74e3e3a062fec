"""What to read, when, and what to compute: plugins get a driver and an emit from the runtime."""
