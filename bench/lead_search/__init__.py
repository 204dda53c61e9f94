"""Benchmark: lead search latency at a million leads under RLS (see README.md)."""
