"""``genxr import hot3d`` (issue #20, item 6): a HOT3D sequence's headset and UmeTrack hands end up
where they are in the OpenXR reference space - Aria's +Z-up world turned +Y-up, millimetres of
the hand model in metres, the CPF at the eyes, timestamps on the frame grid - and malformed
input is refused naming the file, line, field and value, leaving nothing behind."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genxr.components.sim.geometry import quaternion_to_matrix
from genxr.platform.clock import ManualClock
from genxr.platform.messages import HAND_JOINT_NAMES
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.recording.importers import TrackingImportError, import_hot3d
from genxr.xr_runtime.recording.reader import read_recording, verify_recording
from genxr.xr_runtime.replay_source import ReplaySource
from tests.helpers.hot3d import INDEX_PIP_JOINT, START_NS, grid_ns, write_sequence

JOINT = {name: i for i, name in enumerate(HAND_JOINT_NAMES)}
SOURCE = {"origin": "source", "rate_hz": 30.0}


def imported(tmp_path, name="rec", **options):
    report = import_hot3d(tmp_path / "seq", tmp_path / name, **options)
    return report, read_recording(tmp_path / name)


def rotation(pose) -> np.ndarray:
    return quaternion_to_matrix(np.array(pose.orientation))


def test_the_aria_cpf_at_a_known_world_pose_is_the_openxr_head_there(tmp_path):
    write_sequence(tmp_path / "seq")
    _, recording = imported(tmp_path, **SOURCE)
    head = recording.frames[0].head
    # world (1, 2, 1.5), +Z up -> OpenXR (x, z, -y); looking along world +Y -> along OpenXR -Z
    np.testing.assert_allclose(head.position, (1.0, 1.5, -2.0), atol=1e-9)
    np.testing.assert_allclose(rotation(head), np.eye(3), atol=1e-6)  # the CAD axes have 6 digits


def test_hand_landmarks_go_from_model_millimetres_to_openxr_metres(tmp_path):
    write_sequence(tmp_path / "seq", wrist_position=(0.3, 2.2, 1.2))
    _, recording = imported(tmp_path, **SOURCE)
    left, right = recording.frames[0].left_hand, recording.frames[0].right_hand
    np.testing.assert_allclose(left.positions[JOINT["wrist"]], (0.3, 1.2, -2.2), atol=1e-6)
    # index tip at (180, 0, 20) mm in the (left-hand) model: world (0.48, 2.2, 1.22) -> OpenXR (0.48, 1.22, -2.2)
    np.testing.assert_allclose(left.positions[JOINT["index_tip"]], (0.48, 1.22, -2.2), atol=1e-6)
    # the right hand is the model mirrored in its X: world (0.12, 2.2, 1.22)
    np.testing.assert_allclose(right.positions[JOINT["index_tip"]], (0.12, 1.22, -2.2), atol=1e-6)
    # the thumb's CMC is the model's first thumb joint, (16, -10, 8) mm: world (0.316, 2.19, 1.208)
    np.testing.assert_allclose(left.positions[JOINT["thumb_metacarpal"]], (0.316, 1.208, -2.19), atol=1e-6)
    # the index metacarpal is interpolated 12% from the wrist to the MCP at (97, 0, 23) mm
    np.testing.assert_allclose(left.positions[JOINT["index_metacarpal"]],
                               (0.3 + 0.12 * 0.097, 1.2 + 0.12 * 0.023, -2.2), atol=1e-6)
    assert left.location_flags[JOINT["index_metacarpal"]] == 0x3, "interpolated: valid, not tracked"
    assert left.location_flags[JOINT["index_tip"]] == 0xF and left.is_active


def test_a_joint_angle_turns_the_bones_after_it_about_its_centre(tmp_path):
    angles = np.zeros(22)
    angles[INDEX_PIP_JOINT] = math.pi / 2  # 90 degrees about the model's +Z through the PIP at (134, 0, 21) mm
    write_sequence(tmp_path / "seq", wrist_position=(0.0, 0.0, 0.0), angles=angles)
    _, recording = imported(tmp_path, **SOURCE)
    left = recording.frames[0].left_hand
    # the DIP (160, 0, 20) turns to (134, 26, 20) mm: world (0.134, 0.026, 0.020) -> OpenXR (0.134, 0.020, -0.026)
    np.testing.assert_allclose(left.positions[JOINT["index_distal"]], (0.134, 0.020, -0.026), atol=1e-6)
    np.testing.assert_allclose(left.positions[JOINT["index_tip"]], (0.134, 0.020, -0.046), atol=1e-6)
    np.testing.assert_allclose(left.positions[JOINT["index_intermediate"]], (0.134, 0.021, 0.0), atol=1e-6)


def test_joint_orientations_point_minus_z_along_each_bone_and_y_out_of_the_back_of_the_hand(tmp_path):
    write_sequence(tmp_path / "seq")
    _, recording = imported(tmp_path, **SOURCE)
    for hand in (recording.frames[0].left_hand, recording.frames[0].right_hand):
        frames = quaternion_to_matrix(hand.orientations.astype(np.float64))
        for joint, child in (("index_proximal", "index_intermediate"), ("middle_distal", "middle_tip"),
                             ("wrist", "middle_proximal")):
            bone = hand.positions[JOINT[child]] - hand.positions[JOINT[joint]]
            np.testing.assert_allclose(-frames[JOINT[joint]][:, 2], bone / np.linalg.norm(bone), atol=1e-5)
        # the palm centre lies on the palm side: -Y of the wrist frame
        assert np.dot(frames[JOINT["wrist"]][:, 1], hand.positions[JOINT["palm"]] - hand.positions[JOINT["index_proximal"]]) < 0


def test_frames_are_on_the_rate_grid_predicted_one_period_ahead_and_interpolated(tmp_path):
    write_sequence(tmp_path / "seq", frames=4, head_speed_m_s=0.9)  # 3 periods of 1/30 s
    report, recording = imported(tmp_path, origin="source", rate_hz=90.0)
    period = round(1e9 / 90)
    assert [f.sample_time_ns for f in recording.frames] == [START_NS + round(k * 1e9 / 90) for k in range(10)]
    assert all(f.predicted_display_time_ns == f.sample_time_ns + period for f in recording.frames)
    assert [f.frame_id for f in recording.frames] == list(range(10))
    # head x moves 0.9 m/s: at 1/90 s it is 0.01 m on, between the 30 Hz samples
    np.testing.assert_allclose(recording.frames[1].head.position[0] - recording.frames[0].head.position[0], 0.01,
                               atol=1e-6)
    assert report.frames == 10 and report.duration_s == pytest.approx(0.1, abs=1e-6)
    assert [e.kind for e in recording.events] == ["started", "stopped"]


def test_first_head_origin_puts_the_head_above_the_origin_facing_minus_z(tmp_path):
    turned = np.eye(4)
    turned[:3, :3] = quaternion_to_matrix(np.array([0.0, 0.0, math.sin(0.6), math.cos(0.6)]))  # yaw about world Z
    turned[:3, 3] = (3.0, -2.0, 0.4)
    write_sequence(tmp_path / "seq", head=turned)
    _, recording = imported(tmp_path, rate_hz=30.0)
    head = recording.frames[0].head
    np.testing.assert_allclose(head.position, (0.0, 1.6, 0.0), atol=1e-9)
    forward = -rotation(head)[:, 2]
    assert forward[0] == pytest.approx(0.0, abs=1e-9) and forward[2] < 0, "heading turned onto -Z"
    _, lower = imported(tmp_path, "lower", rate_hz=30.0, head_height_m=1.2)
    assert lower.frames[0].head.position[1] == pytest.approx(1.2)


def test_quest3_head_is_between_its_slam_cameras_in_a_y_up_floor_level_world(tmp_path):
    write_sequence(tmp_path / "seq", headset="Quest3")  # device at (0.5, 1.2, -0.3), axes = world's
    report, recording = imported(tmp_path, **SOURCE)
    head = recording.frames[0].head
    np.testing.assert_allclose(head.position, (0.53, 1.07, -0.3), atol=1e-9)
    np.testing.assert_allclose(-rotation(head)[:, 2], (1.0, 0.0, 0.0), atol=1e-9)  # device +X is forward
    np.testing.assert_allclose(rotation(head)[:, 1], (0.0, 1.0, 0.0), atol=1e-9)
    assert report.conversion["world_up"] == "y"
    _, staged = imported(tmp_path, "staged", rate_hz=30.0)
    np.testing.assert_allclose(staged.frames[0].head.position, (0.0, 1.07, 0.0), atol=1e-9)  # floor level: kept


def test_missing_hands_and_headset_gaps_become_absent_hands_and_untracked_head(tmp_path):
    seq = write_sequence(tmp_path / "seq", frames=6)
    hands = [json.loads(line) for line in (seq / "umetrack_hand_pose_trajectory.jsonl").read_text().splitlines()]
    del hands[3]["hand_poses"]["0"]  # no left hand at sample 3
    hands[5]["hand_poses"]["1"]["hand_confidence"] = 0.0  # the right hand not annotated at sample 5
    (seq / "umetrack_hand_pose_trajectory.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hands))
    rows = (seq / "headset_trajectory.csv").read_text().splitlines()
    (seq / "headset_trajectory.csv").write_text("\n".join(rows[:4] + rows[5:]) + "\n")  # no head sample 3
    report, recording = imported(tmp_path, origin="source", rate_hz=30.0, max_gap_s=0.05)
    frames = recording.frames
    assert [f.left_hand is not None for f in frames] == [True, True, True, False, True, True]
    assert [f.right_hand is not None for f in frames] == [True] * 5 + [False]
    assert [f.head_tracked for f in frames] == [True, True, True, False, True, True]
    assert [e.kind for e in recording.events] == ["started", "tracking_lost", "tracking_regained", "stopped"]
    assert report.hands_tracked == {"left": pytest.approx(5 / 6), "right": pytest.approx(5 / 6)}
    assert report.head_tracked == pytest.approx(5 / 6)


def test_the_recording_replays_and_verifies(tmp_path):
    write_sequence(tmp_path / "seq")
    imported(tmp_path, rate_hz=30.0)
    assert verify_recording(tmp_path / "rec").ok and verify_recording(tmp_path / "rec").closed_cleanly
    played = []
    with ReplaySource(tmp_path / "rec", clock=ManualClock(start_ns=10 * NS_PER_S)) as source:
        while (frame := source.read(source.wait_frame())) is not None:
            played.append(frame.frame_id)
    assert played == list(range(6))


def _replace_line(path, number, old, new):
    lines = path.read_text().splitlines()
    assert old in lines[number - 1], (old, lines[number - 1])
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")


def _headset_cell(seq, line, column, value):
    path = seq / "headset_trajectory.csv"
    lines = path.read_text().splitlines()
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


MALFORMED = {
    "headset column missing": (lambda s: _replace_line(s / "headset_trajectory.csv", 1, ",q_wo_w", ",q_w"),
                               ["headset_trajectory.csv:1", "q_wo_w"]),
    "headset value not a number": (lambda s: _headset_cell(s, 3, 2, "abc"),
                                   ["headset_trajectory.csv:3", "t_wo_x[m] is 'abc'", "not a number"]),
    "headset quaternion not unit": (lambda s: _headset_cell(s, 2, 5, "3.0"),
                                    ["headset_trajectory.csv:2", "q_wo_x..q_wo_w", "norm"]),
    "headset timestamps backwards": (lambda s: _headset_cell(s, 4, 1, str(grid_ns(0))),  # line 4: sample 2
                                     ["headset_trajectory.csv:4",
                                      f"timestamp[ns] {grid_ns(0)} is not after the previous {grid_ns(1)}"]),
    "hands line not JSON": (lambda s: _replace_line(s / "umetrack_hand_pose_trajectory.jsonl", 2, "{", "["),
                            ["umetrack_hand_pose_trajectory.jsonl:2", "not JSON"]),
    "hands timestamp missing": (lambda s: _replace_line(s / "umetrack_hand_pose_trajectory.jsonl", 3,
                                                        '"timestamp_ns"', '"time"'),
                                ["umetrack_hand_pose_trajectory.jsonl:3", "timestamp_ns is missing"]),
    "hands timestamps backwards": (lambda s: _replace_line(s / "umetrack_hand_pose_trajectory.jsonl", 3,
                                                           str(grid_ns(2)), str(grid_ns(0))),
                                   ["umetrack_hand_pose_trajectory.jsonl:3", f"timestamp_ns {grid_ns(0)} is not after"]),
    "wrist quaternion not unit": (lambda s: _replace_line(s / "umetrack_hand_pose_trajectory.jsonl", 2,
                                                          '"q_wxyz": [1.0', '"q_wxyz": [2.0'),
                                  ["umetrack_hand_pose_trajectory.jsonl:2", "hand_poses.0.wrist_xform.q_wxyz",
                                   "[2.0, 0.0, 0.0, 0.0]", "norm 2.0"]),
    "joint angle not a number": (lambda s: _replace_line(s / "umetrack_hand_pose_trajectory.jsonl", 1,
                                                     '"joint_angles": [0.0, 0.0, ', '"joint_angles": ["x", '),
                             ["umetrack_hand_pose_trajectory.jsonl:1", "hand_poses.0.joint_angles[0] is 'x'"]),
    "profile field missing": (lambda s: (s / "umetrack_hand_user_profile.json").write_text(
        (s / "umetrack_hand_user_profile.json").read_text().replace("landmark_rest_positions", "landmarks")),
        ["umetrack_hand_user_profile.json", "hand_model.landmark_rest_positions is missing"]),
    "unknown headset": (lambda s: (s / "metadata.json").write_text('{"headset": "HoloLens"}'),
                        ["metadata.json", "headset is 'HoloLens'", "Aria, Quest3"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_refused_naming_file_line_field_and_value_leaving_nothing(tmp_path, case):
    spoil, expected = MALFORMED[case]
    seq = write_sequence(tmp_path / "seq")
    spoil(seq)
    with pytest.raises(TrackingImportError) as excinfo:
        import_hot3d(seq, tmp_path / "out" / "rec", rate_hz=30.0)
    for text in expected:
        assert text in str(excinfo.value), (text, str(excinfo.value))
    assert not (tmp_path / "out" / "rec").exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == [], "no staging folder left"
