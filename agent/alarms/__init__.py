"""The alarm list (ISA-18.2 states) and the audit trail: what is wrong now, who did what.

May import: agent.config.layers (atomic_write), the plugin contract."""
