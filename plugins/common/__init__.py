"""Libraries shared by plugins: limit alarms, report by exception, the state store interface."""
