"""Message schemas: valid messages round-trip exactly; each kind of bad input is rejected
with a ValidationError that names the field and the value."""

from __future__ import annotations

import json
import math

import msgpack
import numpy as np
import pytest
from pydantic import ValidationError

from genxr.platform.messages import (
    HAND_JOINT_COUNT,
    HAND_JOINT_NAMES,
    MAX_AUDIO_CHUNK_SAMPLES,
    MAX_MESSAGE_BYTES,
    MESSAGE_TYPES,
    QUATERNION_TOLERANCE,
    AudioChunk,
    AvatarMotion,
    HandJoints,
    LocationFlags,
    Pose,
    SessionEvent,
    StreamOrder,
    TrackingFrame,
    WorldFrame,
    WorldFrameRequest,
    decode,
    encode,
)
from tests.helpers.messages import all_messages, assert_same, world_frame
from tests.helpers.tracking import two_handed_frame


def hand_fields(**changes):
    fields = dict(
        hand="left", is_active=True,
        location_flags=np.full(HAND_JOINT_COUNT, 0xF, np.uint8),
        positions=np.zeros((HAND_JOINT_COUNT, 3), np.float32),
        orientations=np.tile(np.array([0, 0, 0, 1], np.float32), (HAND_JOINT_COUNT, 1)),
        radii=np.full(HAND_JOINT_COUNT, 0.01, np.float32),
    )
    fields.update(changes)
    return fields


def error_of(excinfo) -> dict:
    errors = excinfo.value.errors()
    assert errors, "a ValidationError must carry at least one error"
    return errors[0]


def test_every_message_type_is_covered_by_the_round_trip_tests():
    assert {type(m).__name__ for m in all_messages()} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message", all_messages(), ids=lambda m: type(m).__name__)
def test_msgpack_round_trip_is_exact(message):
    again = decode(encode(message))
    assert_same(message, again)
    assert encode(again) == encode(message)


@pytest.mark.parametrize("message", all_messages(), ids=lambda m: type(m).__name__)
def test_json_round_trip_is_exact(message):
    text = message.model_dump_json()
    json.loads(text)  # valid JSON
    assert_same(message, type(message).model_validate_json(text))


def test_hand_joint_names_follow_the_openxr_order():
    assert len(HAND_JOINT_NAMES) == HAND_JOINT_COUNT == 26
    assert HAND_JOINT_NAMES[:3] == ("palm", "wrist", "thumb_metacarpal")
    assert HAND_JOINT_NAMES[5] == "thumb_tip"
    assert [HAND_JOINT_NAMES[i] for i in (6, 11, 16, 21)] == [
        "index_metacarpal", "middle_metacarpal", "ring_metacarpal", "little_metacarpal"]
    assert HAND_JOINT_NAMES[25] == "little_tip"


def test_messages_are_frozen_including_their_arrays():
    frame = two_handed_frame()
    with pytest.raises(ValidationError):
        frame.frame_id = 5
    with pytest.raises(ValueError):
        frame.left_hand.positions[0, 0] = 1.0


def test_validation_copies_caller_arrays_so_later_changes_do_not_leak_in():
    positions = np.zeros((HAND_JOINT_COUNT, 3), np.float32)
    hand = HandJoints(**hand_fields(positions=positions))
    positions[0, 0] = 5.0
    assert hand.positions[0, 0] == 0.0


def test_pose_matrix_matches_a_quarter_turn_about_y():
    half = math.sqrt(0.5)
    pose = Pose(position=(1.0, 2.0, 3.0), orientation=(0.0, half, 0.0, half))
    # +90 degrees about +Y maps -Z (forward) to -X (left).
    np.testing.assert_allclose(pose.rotation_matrix() @ [0, 0, -1], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pose.matrix() @ [0, 0, 0, 1], [1, 2, 3, 1])


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_pose_rejects_non_finite_position(bad):
    with pytest.raises(ValidationError) as excinfo:
        Pose(position=(0.0, bad, 0.0))
    error = error_of(excinfo)
    assert error["loc"] == ("position", 1)
    assert math.isnan(error["input"]) if math.isnan(bad) else error["input"] == bad


def test_hand_rejects_nan_joint_naming_field_and_index():
    positions = np.zeros((HAND_JOINT_COUNT, 3), np.float32)
    positions[7, 2] = np.nan
    with pytest.raises(ValidationError) as excinfo:
        HandJoints(**hand_fields(positions=positions))
    error = error_of(excinfo)
    assert error["loc"] == ("positions",)
    assert "(7, 2)" in error["msg"] and "nan" in error["msg"]


def test_pose_rejects_non_unit_quaternion_beyond_tolerance():
    with pytest.raises(ValidationError) as excinfo:
        Pose(orientation=(0.0, 0.0, 0.0, 1.5))
    error = error_of(excinfo)
    assert error["loc"] == ("orientation",)
    assert "1.500000" in error["msg"]


def test_pose_renormalises_quaternion_inside_tolerance():
    w = 1.0 + QUATERNION_TOLERANCE / 2
    pose = Pose(orientation=(0.0, 0.0, 0.0, w))
    assert pose.orientation == (0.0, 0.0, 0.0, 1.0)


def test_hand_rejects_non_unit_quaternion_of_a_valid_joint_only():
    orientations = np.tile(np.array([0, 0, 0, 1], np.float32), (HAND_JOINT_COUNT, 1))
    orientations[12] = [0, 0, 0, 0.5]
    with pytest.raises(ValidationError) as excinfo:
        HandJoints(**hand_fields(orientations=orientations))
    error = error_of(excinfo)
    assert error["loc"] == ("orientations",)
    assert "joint 12 (middle_proximal)" in error["msg"]
    # The same garbage on a joint whose orientation the runtime marked invalid is accepted as is.
    flags = np.full(HAND_JOINT_COUNT, 0xF, np.uint8)
    flags[12] = LocationFlags.POSITION_VALID
    hand = HandJoints(**hand_fields(orientations=orientations, location_flags=flags))
    assert hand.orientations[12, 3] == np.float32(0.5)
    assert not hand.tracked[12] and hand.tracked[11]


@pytest.mark.parametrize("count", [21, 25, 27])
def test_hand_rejects_wrong_joint_count(count):
    with pytest.raises(ValidationError) as excinfo:
        HandJoints(**hand_fields(positions=np.zeros((count, 3), np.float32)))
    error = error_of(excinfo)
    assert error["loc"] == ("positions",)
    assert f"({count}, 3)" in error["msg"] and "(26, 3)" in error["msg"]


def test_hand_rejects_negative_radius_naming_the_joint():
    radii = np.full(HAND_JOINT_COUNT, 0.01, np.float32)
    radii[5] = -0.002
    with pytest.raises(ValidationError) as excinfo:
        HandJoints(**hand_fields(radii=radii))
    error = error_of(excinfo)
    assert error["loc"] == ("radii",)
    assert "joint 5 (thumb_tip)" in error["msg"] and "-0.002" in error["msg"]


def test_tracking_frame_rejects_a_hand_on_the_wrong_side():
    with pytest.raises(ValidationError, match="left_hand holds a hand labelled 'right'"):
        TrackingFrame(frame_id=0, sample_time_ns=0, predicted_display_time_ns=0, head=Pose(),
                      left_hand=HandJoints(**hand_fields(hand="right")))


def test_tracking_frame_rejects_display_time_before_sample_time():
    with pytest.raises(ValidationError, match="predicted_display_time_ns 5 is before sample_time_ns 9"):
        TrackingFrame(frame_id=0, sample_time_ns=9, predicted_display_time_ns=5, head=Pose())


def test_stream_order_rejects_non_monotonic_timestamps_naming_field_and_value():
    order = StreamOrder()
    order.check(two_handed_frame(1))
    later = two_handed_frame(2)
    order.check(later)
    stale = later.model_copy(update={"frame_id": 3, "sample_time_ns": later.sample_time_ns})
    with pytest.raises(ValidationError) as excinfo:
        order.check(stale)
    error = error_of(excinfo)
    assert error["loc"] == ("sample_time_ns",)
    assert error["input"] == later.sample_time_ns
    repeated = later.model_copy(update={"sample_time_ns": later.sample_time_ns + 10})
    with pytest.raises(ValidationError) as excinfo:
        order.check(repeated)
    assert error_of(excinfo)["loc"] == ("frame_id",)


def test_world_frame_request_rejects_tracking_out_of_time_order():
    with pytest.raises(ValidationError) as excinfo:
        WorldFrameRequest(session_id="s", request_id=0, tracking=[two_handed_frame(5), two_handed_frame(2)])
    error = error_of(excinfo)
    assert error["loc"] == ("tracking",)
    assert "does not increase" in error["msg"]


@pytest.mark.parametrize("image, expected", [
    (np.zeros((64, 64, 3), np.float32), "expected dtype uint8, got float32"),
    (np.zeros((64, 64, 4), np.uint8), "expected shape (*, *, 3), got (64, 64, 4)"),
    (np.zeros((64, 64), np.uint8), "expected shape (*, *, 3), got (64, 64)"),
])
def test_world_frame_rejects_images_of_wrong_dtype_or_shape(image, expected):
    with pytest.raises(ValidationError) as excinfo:
        world_frame(image=image)
    error = error_of(excinfo)
    assert error["loc"] == ("image",)
    assert expected in error["msg"]


def test_oversized_payloads_are_rejected():
    with pytest.raises(ValidationError) as excinfo:
        AudioChunk(speaker="agent", start_time_ns=0, sample_rate_hz=48000, samples=np.zeros(MAX_AUDIO_CHUNK_SAMPLES + 1, np.float32))
    assert error_of(excinfo)["loc"] == ("samples",)
    assert "exceeds the limit" in error_of(excinfo)["msg"]
    with pytest.raises(ValueError, match="exceeds MAX_MESSAGE_BYTES"):
        decode(b"\x00" * (MAX_MESSAGE_BYTES + 1))


def test_audio_rejects_samples_outside_unit_range():
    samples = np.zeros(100, np.float32)
    samples[40] = 1.5
    with pytest.raises(ValidationError) as excinfo:
        AudioChunk(speaker="user", start_time_ns=0, sample_rate_hz=16000, samples=samples)
    error = error_of(excinfo)
    assert error["loc"] == ("samples",)
    assert "index 40" in error["msg"]


def test_avatar_motion_rejects_mismatched_lengths_and_joint_counts():
    with pytest.raises(ValidationError, match="rotations_6d has 4 frames but root_translation has 3"):
        AvatarMotion(session_id="s", request_id=0, start_time_ns=0, fps=30,
                     rotations_6d=np.zeros((4, 22, 6), np.float32), root_translation=np.zeros((3, 3), np.float32))
    with pytest.raises(ValidationError) as excinfo:
        AvatarMotion(session_id="s", request_id=0, start_time_ns=0, fps=30,
                     rotations_6d=np.zeros((4, 24, 6), np.float32), root_translation=np.zeros((4, 3), np.float32))
    assert error_of(excinfo)["loc"] == ("rotations_6d",)


def test_decode_rejects_garbage_unknown_types_and_unexpected_types():
    with pytest.raises(ValueError, match="not a genxr message"):
        decode(b"\xc1\xc1 not msgpack")
    with pytest.raises(ValueError, match="unknown message type 'Banana'"):
        decode(msgpack.packb({"type": "Banana", "data": {}}))
    with pytest.raises(ValueError, match="expected a WorldFrame, got a TrackingFrame"):
        decode(encode(two_handed_frame()), expected=WorldFrame)


def test_decode_rejects_truncated_array_buffers_naming_the_field():
    envelope = msgpack.unpackb(encode(two_handed_frame()))
    envelope["data"]["left_hand"]["radii"]["data"] = envelope["data"]["left_hand"]["radii"]["data"][:-4]
    with pytest.raises(ValidationError) as excinfo:
        decode(msgpack.packb(envelope, use_bin_type=True))
    error = error_of(excinfo)
    assert error["loc"] == ("left_hand", "radii")
    assert "holds 100 bytes" in error["msg"]


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError) as excinfo:
        SessionEvent(session_id="s", time_ns=0, kind="started", colour="red")
    assert error_of(excinfo)["loc"] == ("colour",)
