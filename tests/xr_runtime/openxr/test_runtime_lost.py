"""The OpenXR runtime lost mid-session (its service killed) ends the session as Ctrl-C does:
every file closed and complete, the ``stopped`` event saying why, a clear message - not an
``InstanceLostError`` traceback with no metrics.json or trace.json (issue #17, item 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xr

from genxr.platform.clock import MONOTONIC
from genxr.platform.messages import WorldFrame
from genxr.xr_runtime.recording.reader import read_recording, verify_recording
from tests.helpers.fake_openxr import FakeHeadsetSource, TrackingRuntime


def still_world(request):
    last = request.tracking[-1]
    return WorldFrame(session_id=request.session_id, request_id=request.request_id, frame_id=last.frame_id,
                      head=last.head, generated_for_time_ns=last.predicted_display_time_ns, vertical_fov_deg=90.0,
                      image=np.full((16, 16, 3), 90, np.uint8))


@pytest.mark.parametrize(("function", "error"), [
    ("wait_frame", xr.InstanceLostError("the service was killed")),
    ("locate_space", xr.SessionLostError()),
    ("end_frame", xr.RuntimeFailureError("the compositor is gone")),
])
def test_a_runtime_lost_mid_session_ends_it_like_an_interruption(tmp_path, function, error):
    from genxr.platform.config import load_config
    from genxr.xr_runtime.session import run_session

    runtime = TrackingRuntime(MONOTONIC)

    def kill_at_frame_8(frame_id: int) -> None:
        if frame_id == 8:
            runtime.fail[function] = error

    config = load_config("quick", session={"avatar": False}, display={"width": 32, "height": 24})
    folder = tmp_path / "lost"
    result = run_session(config, folder, max_frames=40, source=FakeHeadsetSource(runtime, clock=MONOTONIC),
                         world=("still", still_world), on_progress=kill_at_frame_8)
    assert result.interrupted and result.interrupted_by == "tracking source lost"
    assert type(error).__name__ in result.source_lost and "went away mid-session" in result.source_lost
    assert 7 <= result.metrics["frames"] < 40  # the frames shown before the runtime went away
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["stopped"].startswith("tracking source lost")
    assert json.loads((folder / "trace.json").read_text())["traceEvents"]
    recording = read_recording(folder / "recording")
    assert recording.complete and recording.events[-1].kind == "stopped"
    assert verify_recording(folder / "recording").ok


def test_demo_says_what_happened_and_exits_2(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from genxr.cli.app import app
    from genxr.xr_runtime import session as session_module

    runtime = TrackingRuntime(MONOTONIC)
    calls = {"n": 0}
    original = runtime.wait_frame

    def dies_after_ten(session, frame_wait_info=None):
        calls["n"] += 1
        if calls["n"] > 10:
            raise xr.InstanceLostError("the service was killed")
        return original(session, frame_wait_info)

    runtime.wait_frame = dies_after_ten
    monkeypatch.setattr(session_module, "make_source", lambda config, clock: FakeHeadsetSource(runtime, clock=clock))
    result = CliRunner().invoke(app, ["demo", "--source", "openxr", "--world", "ground_truth", "--preset", "quick",
                                      "--seconds", "5", "--out", str(tmp_path / "xr")])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 2, result.output
    assert "InstanceLostError" in said and "every file was closed and is complete" in said
    assert "Traceback" not in said
    assert (tmp_path / "xr" / "metrics.json").is_file()
