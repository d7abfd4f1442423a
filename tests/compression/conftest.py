"""Shared fixtures for the compression tests: tiny zoo models (from :mod:`tests.helpers.compression`)."""

from __future__ import annotations

import pytest

from tests.helpers.compression import tiny_model


@pytest.fixture
def tiny():
    """Factory: tiny(name) -> (model in eval mode with random BN statistics, example inputs)."""
    return tiny_model
