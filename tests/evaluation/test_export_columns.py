"""``genxr study export``: every joint's pose, radius and flags, for both hands, and the head's
orientation, in CSV and Parquet, checked against the recording they came from."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from genxr.evaluation.export import export_recording
from genxr.platform.clock import ManualClock
from genxr.platform.messages import HAND_JOINT_COUNT, HAND_JOINT_NAMES
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.recording.table import JOINT_FIELDS, tracking_columns
from genxr.xr_runtime.recording.writer import Recorder
from tests.helpers.tracking import paced_frames

FRAMES = 6


def record(folder, drop_right_hand_at: int | None = None) -> None:
    frames = paced_frames(FRAMES)
    with Recorder(folder, metadata={"source": "test"}, clock=ManualClock(start_ns=1)) as recorder:
        for frame in frames:
            if frame.frame_id == drop_right_hand_at:
                frame = frame.model_copy(update={"right_hand": None})
            recorder.add_frame(frame)


def test_columns_name_every_joints_position_orientation_radius_and_flags_for_both_hands():
    columns = tracking_columns()
    assert len(columns) == len(set(columns))
    assert {"head_qx", "head_qy", "head_qz", "head_qw"} <= set(columns)
    for side in ("left", "right"):
        for joint in HAND_JOINT_NAMES:
            assert [f"{side}_{joint}_{field}" for field in JOINT_FIELDS] == \
                [c for c in columns if c.startswith(f"{side}_{joint}_")]
    assert len(columns) == 11 + 2 * (1 + HAND_JOINT_COUNT * 9)


def _as_float(value: str) -> float:
    return float(value)


def test_csv_holds_what_the_recording_holds(tmp_path):
    record(tmp_path / "rec", drop_right_hand_at=3)
    written = export_recording(tmp_path / "rec", tmp_path / "out", "csv")
    assert written["rows"]["tracking"] == FRAMES
    recording = read_recording(tmp_path / "rec")
    with open(tmp_path / "out" / "tracking.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == FRAMES
    for frame, row in zip(recording.frames, rows):
        assert int(row["frame_id"]) == frame.frame_id
        assert [_as_float(row[f"head_q{a}"]) for a in "xyzw"] == pytest.approx(frame.head.orientation)
        for side in ("left", "right"):
            hand = getattr(frame, f"{side}_hand")
            if hand is None:
                assert row[f"{side}_active"] == "" and row[f"{side}_wrist_qw"] == "" and row[f"{side}_wrist_flags"] == ""
                continue
            for index, joint in enumerate(HAND_JOINT_NAMES):
                prefix = f"{side}_{joint}_"
                assert [_as_float(row[prefix + a]) for a in "xyz"] == pytest.approx(hand.positions[index], abs=1e-6)
                assert [_as_float(row[prefix + f"q{a}"]) for a in "xyzw"] == \
                    pytest.approx(hand.orientations[index], abs=1e-6)
                assert _as_float(row[prefix + "radius"]) == pytest.approx(float(hand.radii[index]), abs=1e-7)
                assert int(row[prefix + "flags"]) == int(hand.location_flags[index])
    some = recording.frames[0].left_hand
    assert not np.allclose(some.orientations, [0, 0, 0, 1]), "the recording's joints are really rotated"
    assert (some.radii > 0).all() and (some.location_flags == 0xF).all()


def test_parquet_has_the_same_columns_and_values(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    record(tmp_path / "rec", drop_right_hand_at=2)
    export_recording(tmp_path / "rec", tmp_path / "out", "parquet")
    table = pq.read_table(tmp_path / "out" / "tracking.parquet")
    assert table.column_names == tracking_columns()
    recording = read_recording(tmp_path / "rec")
    data = table.to_pydict()
    hand = recording.frames[1].right_hand
    assert data["right_index_tip_qw"][1] == pytest.approx(float(hand.orientations[HAND_JOINT_NAMES.index("index_tip"), 3]))
    assert data["right_index_tip_radius"][1] == pytest.approx(float(hand.radii[HAND_JOINT_NAMES.index("index_tip")]))
    assert data["left_wrist_flags"][0] == int(recording.frames[0].left_hand.location_flags[1])
    assert data["right_wrist_flags"][2] is None and data["right_wrist_qx"][2] is None, "an absent hand is null"
