"""Off-device tools for ops teams (they run on a laptop or a server, not in the daemon): the
broker connection, tail, capture, fleet inventory, push-config, commands, reports.

May import: agent.messaging.codec, agent.config, agent.remote.signing. The daemon never imports ops/."""
