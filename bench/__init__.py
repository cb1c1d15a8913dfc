"""Benchmarks (run inside a guest)."""
