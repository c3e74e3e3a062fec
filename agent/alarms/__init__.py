"""The alarm list (ISA-18.2 states) and the audit trail: what is wrong now, who did what.

May import: agent.slot_file, the plugin contract."""
