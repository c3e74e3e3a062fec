"""On-device history: per-minute and per-hour aggregates of every numeric value an instance
publishes (min, mean, max, last, count, share of good samples), in the state dir.

May import: agent.messaging (codec helpers), agent.config.declared_values, the contracts."""
