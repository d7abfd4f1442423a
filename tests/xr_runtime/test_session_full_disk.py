"""A disk that fills up while a session runs ends it like an interruption: the loop stops,
every file is closed, what can be written is (metrics.json, trace.json), and a SessionError
names the file and says there is no space left; ``genxr demo`` exits 2 saying so."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.platform import tracing
from genxr.platform.config import load_config
from genxr.xr_runtime.recording import writer
from genxr.xr_runtime.recording.format import CHUNKS_FILE
from genxr.xr_runtime.recording.reader import read_recording, verify_recording
from genxr.xr_runtime.session import SessionError, run_session
from tests.helpers.cli import said
from tests.helpers.disk import DiskFillsUp
from tests.helpers.tracing import validate_chrome_trace

QUICK = {"display": {"width": 64, "height": 64}, "session": {"world": "ground_truth", "avatar": False}}


def test_a_full_disk_while_recording_stops_the_session_and_writes_what_it_can(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "os", DiskFillsUp(room=200_000))  # two chunks of tracking frames (~80 kB)
    folder = tmp_path / "s"
    with pytest.raises(SessionError) as raised:
        run_session(load_config("quick", **QUICK), folder, seconds=60.0, max_frames=3000)
    message = said(str(raised.value))
    assert "no space left on device" in message and str(folder / "recording" / CHUNKS_FILE) in message
    assert "Written: metrics.json, trace.json" in message and "--out" in message
    result = raised.value.result
    assert result is not None and 0 < result.metrics["frames"] < 3000, "the loop stopped"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["stopped"].startswith("write failed") and "No space left on device" in metrics["write_failed"]
    validate_chrome_trace(json.loads((folder / "trace.json").read_text()))
    report = verify_recording(folder / "recording")
    assert report.ok and report.chunks >= 1 and not report.closed_cleanly, "whole chunks only, marked unfinished"
    assert read_recording(folder / "recording").frames, "the frames recorded before are readable"
    assert (folder / "session.mp4").is_file(), "the video was finished"


def test_a_full_disk_under_the_span_stream_stops_the_session_too(tmp_path, monkeypatch):
    monkeypatch.setattr(tracing, "os", DiskFillsUp(room=30_000))
    folder = tmp_path / "s"
    with pytest.raises(SessionError) as raised:
        run_session(load_config("quick", **QUICK), folder, seconds=60.0, max_frames=3000)
    message = said(str(raised.value))
    assert "no space left on device" in message and str(folder / "spans.jsonl") in message
    assert raised.value.result.metrics["frames"] < 3000
    trace = json.loads((folder / "trace.json").read_text())
    assert trace["otherData"]["dropped_spans"] == raised.value.result.metrics["dropped_spans"] > 0
    assert read_recording(folder / "recording").complete, "the recording itself was closed cleanly"


def test_genxr_demo_on_a_full_disk_exits_2_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "os", DiskFillsUp(room=200_000))
    monkeypatch.setenv("GENXR_SESSION__AVATAR", "false")
    result = CliRunner().invoke(app, ["demo", "--preset", "quick", "--world", "ground_truth", "--seconds", "60",
                                      "--out", str(tmp_path / "d")])
    assert result.exit_code == 2, result.output
    assert "no space left on device" in said(result.output) and CHUNKS_FILE in said(result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), "no traceback"


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_real_disk_filling_up_ends_the_session_with_a_clear_error(small_disk):
    folder = small_disk / "s"
    with pytest.raises(SessionError, match="no space left on device") as raised:
        run_session(load_config("quick", **QUICK), folder, seconds=120.0)
    assert str(folder) in str(raised.value)
    assert raised.value.result.metrics["frames"] > 0
    report = verify_recording(folder / "recording")
    assert not report.corrupt, report.problem
    assert not list(folder.glob("*.tmp")), "no torn temp file is left taking space"
