"""Libraries shared by plugins (a plugin imports another plugin's code only from here): limit alarms,
report by exception, counters, trends, the state store helper, pass-through declared values."""
