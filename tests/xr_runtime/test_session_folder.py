"""A session never mixes with an earlier one: a folder that already holds files is refused,
naming it and what to do; ``genxr demo``'s default folder moves the previous session aside,
so ``make demo`` twice in a row keeps both; non-finite durations are refused up front."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.platform.config import load_config
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.session import SessionError, move_aside, run_session
from tests.helpers.cli import said

QUICK = {"display": {"width": 64, "height": 64}, "session": {"world": "ground_truth", "avatar": False}}


def test_a_folder_holding_a_session_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "s"
    run_session(load_config("quick", **QUICK), folder, seconds=30.0, max_frames=5)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(SessionError) as raised:
        run_session(load_config("quick", **QUICK), folder, seconds=30.0, max_frames=5)
    message = said(str(raised.value))
    assert repr(str(folder)) in message and "not empty" in message and "metrics.json" in message
    assert "--out" in message
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_an_empty_existing_folder_is_used(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    assert run_session(load_config("quick", **QUICK), folder, seconds=30.0, max_frames=3).metrics["frames"] == 3


def test_move_aside_takes_the_first_free_number(tmp_path):
    folder = tmp_path / "demo"
    assert move_aside(folder) is None
    folder.mkdir()
    assert move_aside(folder) is None, "an empty folder stays"
    (folder / "metrics.json").write_text("{}")
    (tmp_path / "demo.1").mkdir()
    assert move_aside(folder) == tmp_path / "demo.2" and not folder.exists()
    assert (tmp_path / "demo.2" / "metrics.json").is_file()


def test_genxr_demo_twice_into_the_default_folder_keeps_both_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv("GENXR_OUTPUT_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GENXR_SESSION__AVATAR", "false")
    runner = CliRunner()
    argv = ["demo", "--preset", "quick", "--world", "ground_truth", "--seconds", "0.5"]
    first = runner.invoke(app, argv)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, argv)
    assert second.exit_code == 0, second.output
    assert f"the previous demo session is now in {tmp_path / 'runs' / 'demo.1'}" in said(second.output)
    for folder in (tmp_path / "runs" / "demo", tmp_path / "runs" / "demo.1"):
        assert json.loads((folder / "metrics.json").read_text())["stopped"] == "finished"
        assert read_recording(folder / "recording").complete and (folder / "trace.json").is_file()


def test_genxr_demo_into_a_used_out_folder_exits_2_saying_what_to_do(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "metrics.json").write_text("{}")
    result = CliRunner().invoke(app, ["demo", "--preset", "quick", "--seconds", "0.5", "--out", str(used)])
    assert result.exit_code == 2
    assert "not empty" in said(result.output) and "--out" in said(result.output)
    assert [p.name for p in used.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_genxr_demo_refuses_a_non_finite_length(tmp_path, value):
    result = CliRunner().invoke(app, ["demo", "--preset", "quick", "--seconds", value, "--out", str(tmp_path / "d")])
    assert result.exit_code == 2 and "--seconds" in said(result.output)
    assert not (tmp_path / "d").exists()


def test_run_session_refuses_a_non_finite_length(tmp_path):
    with pytest.raises(SessionError, match=r"seconds must be a finite number of seconds > 0, got inf"):
        run_session(load_config("quick", **QUICK), tmp_path / "s", seconds=float("inf"))
    assert not (tmp_path / "s").exists()
