"""Fixtures shared across the test tree: one local Ray instance (127.0.0.1, Serve with handles
only) for every test that needs Ray Serve, started on first use and stopped at the end."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def serve_handles():
    import ray
    from ray import serve

    from genxr.deploy.serving.deployments import connect

    handles = connect()
    yield handles
    serve.shutdown()
    ray.shutdown()
