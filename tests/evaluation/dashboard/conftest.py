"""Real recorded sessions for the dashboard tests (the server itself: tests.helpers.dashboard)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genxr.platform.config import load_config
from genxr.xr_runtime.session import run_session


def record_session(folder: Path, world_rate_hz: float, seconds: float = 1.5) -> Path:
    config = load_config("quick", display={"width": 64, "height": 64}, session={"world_rate_hz": world_rate_hz})
    return run_session(config, folder, seconds=seconds).folder


@pytest.fixture(scope="package")
def sessions(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("dashboard-sessions")
    return [record_session(root / "fast_world", 30.0), record_session(root / "slow_world", 4.0)]
