"""Metrics, benchmarks (``genxr bench``), the latency dashboard and user-study tooling."""
