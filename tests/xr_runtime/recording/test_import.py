"""``genxr import study-csv`` (issue #20, item 6) is the exact inverse of ``genxr study export``;
malformed CSV is refused naming the line, column and value, leaving nothing; the ``genxr import``
command prints a JSON report; and an imported recording drives a replay session."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.evaluation.export import export_recording
from genxr.platform.clock import ManualClock
from genxr.platform.config import load_config
from genxr.platform.messages import SessionEvent, encode
from genxr.xr_runtime.recording.importers import TrackingImportError, import_study_csv
from genxr.xr_runtime.recording.reader import read_recording, verify_recording
from genxr.xr_runtime.recording.writer import Recorder
from genxr.xr_runtime.session import run_session
from tests.helpers.cli import said
from tests.helpers.hot3d import write_sequence
from tests.helpers.tracking import PERIOD_NS, paced_frames

runner = CliRunner()


def varied_frames():
    """Two-handed frames, plus a missing hand, an inactive hand, untracked joints and a lost head."""
    frames = paced_frames(12)
    frames[3] = frames[3].model_copy(update={"left_hand": None})
    frames[5] = frames[5].model_copy(update={"right_hand": frames[5].right_hand.model_copy(update={"is_active": False})})
    hand = frames[7].left_hand
    flags, orientations = hand.location_flags.copy(), hand.orientations.copy()
    flags[4], orientations[4] = 0, 0.0  # joint 4 not located: its orientation is not a quaternion
    flags[9] = 0x3
    frames[7] = frames[7].model_copy(update={"left_hand": hand.model_copy(update={
        "location_flags": flags, "orientations": orientations})})
    frames[8] = frames[8].model_copy(update={"head_tracked": False})
    return frames


def record(folder, frames, events=()):
    clock = ManualClock(start_ns=frames[0].sample_time_ns)
    with Recorder(folder, clock=clock) as recorder:
        for event in events:
            recorder.add_event(event)
        for frame in frames:
            recorder.add_frame(frame)
            clock.advance_ns(PERIOD_NS)


EVENTS = [SessionEvent(session_id="s1", time_ns=1_000_000, kind="started", detail="source=sim, world=\"x\""),
          SessionEvent(session_id="s1", time_ns=1_000_000 + 8 * PERIOD_NS, kind="tracking_lost", detail="head"),
          SessionEvent(session_id="s1", time_ns=1_000_000 + 11 * PERIOD_NS, kind="stopped", detail="finished")]


@pytest.fixture
def exported(tmp_path):
    record(tmp_path / "original", varied_frames(), EVENTS)
    export_recording(tmp_path / "original", tmp_path / "csv")
    return tmp_path / "csv"


def test_export_then_import_gives_back_the_same_frames_and_events(tmp_path, exported):
    report = import_study_csv(exported / "tracking.csv", tmp_path / "again")
    original, again = read_recording(tmp_path / "original"), read_recording(tmp_path / "again")
    assert [encode(f) for f in again.frames] == [encode(f) for f in original.frames], "byte-identical messages"
    assert again.events == original.events
    assert again.complete and verify_recording(tmp_path / "again").ok
    assert report.frames == 12 and report.events == 3 and report.hands_tracked["left"] == pytest.approx(11 / 12)
    assert report.head_tracked == pytest.approx(11 / 12)


def test_without_events_csv_the_session_events_are_written(tmp_path, exported):
    (exported / "events.csv").unlink()
    report = import_study_csv(exported, tmp_path / "again")  # the folder holding tracking.csv
    events = read_recording(tmp_path / "again").events
    assert [e.kind for e in events] == ["started", "tracking_lost", "tracking_regained", "stopped"]
    assert any("events.csv" in note for note in report.notes)


def rewrite(path, change):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    change(rows)
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def set_cell(column, line, value):
    def change(rows):
        rows[line - 1][rows[0].index(column)] = value
    return change


def drop_column(column):
    def change(rows):
        index = rows[0].index(column)
        for row in rows:
            del row[index]
    return change


MALFORMED = {
    "missing column": (drop_column("head_qw"), ["tracking.csv:1", "head_qw"]),
    "not a number": (set_cell("head_x", 3, "abc"), ["tracking.csv:3", "head_x is 'abc'", "not a number"]),
    "joint not a number": (set_cell("right_index_tip_y", 4, "1,5"),
                           ["tracking.csv:4", "right_index_tip_y is '1,5'"]),
    "non-unit quaternion": (set_cell("head_qw", 2, "3.0"), ["tracking.csv:2", "head_qx..qw", "norm"]),
    "non-unit joint quaternion": (set_cell("left_wrist_qw", 6, "2.0"), ["tracking.csv:6", "left_wrist_qx..qw"]),
    "times backwards": (set_cell("sample_time_ns", 5, "5"),
                        ["tracking.csv:5", "sample_time_ns 5 is not after the previous"]),
    "frame ids repeat": (set_cell("frame_id", 4, "1"), ["tracking.csv:4", "frame_id 1 is not after the previous 1"]),
    "half a hand": (set_cell("left_wrist_x", 5, "0.1"),
                    ["tracking.csv:5", "left_active is empty", "left_wrist_x is '0.1'"]),
    "bad flag": (set_cell("left_palm_flags", 2, "300"), ["tracking.csv:2", "left_palm_flags 300 is outside [0, 255]"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv_is_refused_naming_line_column_and_value_leaving_nothing(tmp_path, exported, case):
    change, expected = MALFORMED[case]
    rewrite(exported / "tracking.csv", change)
    with pytest.raises(TrackingImportError) as excinfo:
        import_study_csv(exported / "tracking.csv", tmp_path / "out" / "again")
    for text in expected:
        assert text in str(excinfo.value), (text, str(excinfo.value))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == [], "no staging folder left"


def test_an_unknown_event_kind_is_refused_naming_it(tmp_path, exported):
    rewrite(exported / "events.csv", set_cell("kind", 3, "exploded"))
    with pytest.raises(TrackingImportError, match=r"events.csv:3: kind 'exploded' is invalid"):
        import_study_csv(exported, tmp_path / "again")


def test_an_existing_recording_is_never_overwritten(tmp_path, exported):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(TrackingImportError, match="already exists and is not an empty folder"):
        import_study_csv(exported, tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]


def test_progress_is_reported_with_the_expected_total(tmp_path, exported):
    calls = []
    import_study_csv(exported, tmp_path / "again", on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (12, 12)


def test_the_import_command_prints_a_json_report(tmp_path):
    write_sequence(tmp_path / "seq", frames=4)
    result = runner.invoke(app, ["import", "hot3d", str(tmp_path / "seq"), "--out", str(tmp_path / "rec"),
                                 "--rate-hz", "30", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["frames"] == 4 and report["format"] == "hot3d" and report["out"] == str(tmp_path / "rec")
    assert report["duration_s"] == pytest.approx(0.1, abs=1e-6)
    assert report["hands_tracked"] == {"left": 1.0, "right": 1.0} and report["conversion"]["world_up"] == "z"
    assert "--source replay --replay" in report["replay"]
    assert len(read_recording(tmp_path / "rec").frames) == 4


def test_the_import_command_fails_with_the_error_and_nothing_on_stdout(tmp_path, exported):
    rewrite(exported / "tracking.csv", set_cell("head_x", 3, "abc"))
    result = runner.invoke(app, ["import", "study-csv", str(exported), "--out", str(tmp_path / "again"), "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "tracking.csv:3: head_x is 'abc'" in said(result.stderr)
    result = runner.invoke(app, ["import", "study-csv", str(exported), "--out", str(tmp_path / "x"), "--rate-hz", "30"])
    assert result.exit_code == 2 and "--rate-hz apply to hot3d only" in said(result.stderr)
    result = runner.invoke(app, ["import", "umetrack", str(exported), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "FORMAT must be one of study-csv, hot3d" in said(result.stderr)


def test_a_replay_session_plays_the_imported_motion(tmp_path):
    write_sequence(tmp_path / "seq", frames=31, head_speed_m_s=0.3)  # 1 s at 30 Hz, walking sideways
    import_hot3d_report = runner.invoke(app, ["import", "hot3d", str(tmp_path / "seq"), "--out",
                                              str(tmp_path / "motion"), "--rate-hz", "30", "--json"])
    assert import_hot3d_report.exit_code == 0, import_hot3d_report.stderr
    config = load_config("quick", session={"source": "replay", "replay_path": tmp_path / "motion", "avatar": False,
                                           "world": "ground_truth"}, display={"width": 64, "height": 64})
    result = run_session(config, tmp_path / "session", seconds=30.0)
    imported = read_recording(tmp_path / "motion").frames
    replayed = read_recording(tmp_path / "session" / "recording").frames
    assert result.metrics["frames"] == len(imported) == 31
    assert [f.frame_id for f in replayed] == [f.frame_id for f in imported]
    assert [f.head for f in replayed] == [f.head for f in imported]
    np.testing.assert_array_equal(replayed[-1].right_hand.positions, imported[-1].right_hand.positions)
