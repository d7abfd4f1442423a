"""Real sessions and a real dashboard server on 127.0.0.1 for the dashboard tests."""

from __future__ import annotations

import threading
import time
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


class RunningServer:
    """uvicorn serving ``app`` on 127.0.0.1 and a free port, in a thread; stopped on exit."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the dashboard server did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
