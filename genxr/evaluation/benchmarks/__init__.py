"""Benchmarks behind ``genxr bench ...``: each returns a JSON-able dict, measured against a
baseline taken in the same run where a comparison is asked for (machines here are noisy)."""
