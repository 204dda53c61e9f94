"""Benchmark: analytics overview latency at 1M leads / 5M messages (see README.md)."""

from bench.analytics.run import main

main()
