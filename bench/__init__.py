"""Benchmarks, run by hand from the repository root: ``.venv/bin/python -m bench.NAME`` (bench.plant,
bench.curves, bench.vibration, ...). Each prints its figures; none asserts a time (docs/performance.md)."""
