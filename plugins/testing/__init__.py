"""Test tools for plugin authors: the Harness (run a plugin with no broker), the conformance
checks and the kit class."""
