"""Benchmarks: scripts that print figures, not timed tests (see bench/bench_sync.py)."""
