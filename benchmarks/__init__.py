"""Throughput benchmarks (`make bench` → BENCHMARKS.md); each module prints its tables when run alone."""
