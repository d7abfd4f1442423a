"""genxr: an end-to-end research platform for interactive XR.

Areas (one subpackage each; data flows one way, source -> bus -> models -> compositor -> sinks):

- :mod:`genxr.platform` - message schemas, bus, clock, tracing, config
- :mod:`genxr.components` - simulator, world model, avatar
- :mod:`genxr.compression` - model folding and pruning
- :mod:`genxr.deploy` - export, inference engines, Ray Serve
- :mod:`genxr.xr_runtime` - tracking sources, frame loop, compositor, sinks
- :mod:`genxr.evaluation` - metrics, benchmarks, dashboard, user studies

The areas live under ``genxr/`` because a top-level ``platform`` package would shadow
Python's standard-library ``platform`` module.
"""

__version__ = "0.1.0"
