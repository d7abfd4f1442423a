"""One local Ray instance (127.0.0.1, Serve with handles only) for all deploy tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def serve_handles():
    import ray
    from ray import serve

    from genxr.deploy.serve import connect

    handles = connect()
    yield handles
    serve.shutdown()
    ray.shutdown()
