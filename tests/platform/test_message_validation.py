"""Issue #18, D4-D8: bad messages are refused with a ValidationError naming the field and the
value; nothing invalid validates (so whatever validates also encodes and is usable downstream).

* D4 images (and motions) have minimum sizes;
* D5 array casts are lossless: finiteness after the cast, integer range, wire byte order;
* D6 ``decode`` raises nothing but ValidationError for malformed input;
* D7 every integer is bounded to what msgpack carries;
* D8 tracking frames inside one WorldFrameRequest strictly increase in id and time.
"""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from pydantic import ValidationError

from genxr.platform.messages import (
    AVATAR_JOINT_COUNT,
    HAND_JOINT_COUNT,
    INT64_MAX,
    MESSAGE_TYPES,
    MIN_IMAGE_SIDE,
    UINT64_MAX,
    AvatarMotion,
    DisplayFrame,
    HandJoints,
    Pose,
    StreamOrder,
    TrackingFrame,
    WorldFrameRequest,
    decode,
    encode,
)
from genxr.xr_runtime.compositor import Compositor, CompositorConfig
from tests.helpers.messages import all_messages, world_frame
from tests.helpers.tracking import two_handed_frame


def refused(build) -> dict:
    """The first error of the ValidationError ``build()`` raises (any other exception fails the test)."""
    with pytest.raises(ValidationError) as excinfo:
        build()
    errors = excinfo.value.errors()
    assert errors
    return errors[0]


def wire(message) -> dict:
    return msgpack.unpackb(encode(message), raw=False)


def packed(envelope: dict) -> bytes:
    return msgpack.packb(envelope, use_bin_type=True)


def motion(frames: int) -> AvatarMotion:
    return AvatarMotion(session_id="s", request_id=0, start_time_ns=0, fps=30.0,
                        rotations_6d=np.zeros((frames, AVATAR_JOINT_COUNT, 6), np.float32),
                        root_translation=np.zeros((frames, 3), np.float32))


# --- D4: minimum sizes ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 0, 3), (1, 1, 3), (1, 64, 3), (64, 1, 3), (0, 64, 3)])
def test_world_frame_images_smaller_than_2x2_are_refused_naming_the_shape(shape):
    error = refused(lambda: world_frame(image=np.zeros(shape, np.uint8)))
    assert error["loc"] == ("image",)
    assert str(shape) in error["msg"] and f"({MIN_IMAGE_SIDE}, {MIN_IMAGE_SIDE}, 3)" in error["msg"]


def test_a_0x0_world_frame_is_refused_on_the_wire_too():
    envelope = {"type": "WorldFrame", "data": wire(world_frame())["data"]}
    envelope["data"]["image"] = {"dtype": "uint8", "shape": [0, 0, 3], "data": b""}
    assert refused(lambda: decode(packed(envelope)))["loc"] == ("image",)


@pytest.mark.parametrize("field", ["image", "view_images"])
def test_display_frame_images_smaller_than_2x2_are_refused(field):
    tiny = np.zeros((1, 1, 3), np.uint8)
    good = np.zeros((8, 8, 3), np.uint8)
    fields = {"image": tiny} if field == "image" else {"image": good, "view_images": [good, tiny]}
    error = refused(lambda: DisplayFrame(frame_id=0, display_time_ns=0, **fields))
    assert error["loc"][0] == field and "smaller than the minimum" in error["msg"]


def test_the_smallest_world_frame_is_usable_by_the_compositor():
    smallest = world_frame(image=np.full((MIN_IMAGE_SIDE, MIN_IMAGE_SIDE, 3), 77, np.uint8))
    compositor = Compositor(CompositorConfig(width=16, height=16))
    shown = compositor.composite(1, 10, Pose(), smallest)
    assert shown.image.shape == (16, 16, 3) and (shown.image == 77).all()
    decode(encode(shown))  # and its DisplayFrame is a valid message


def test_an_avatar_motion_without_frames_is_refused():
    error = refused(lambda: motion(0))
    assert error["loc"] == ("rotations_6d",) and "(0, 22, 6)" in error["msg"]
    assert motion(1).rotations_6d.shape == (1, AVATAR_JOINT_COUNT, 6)


# --- D5: lossless casts ---------------------------------------------------------------------


def hand(**changes) -> HandJoints:
    fields = dict(hand="left", is_active=True, location_flags=np.full(HAND_JOINT_COUNT, 0xF, np.uint8),
                  positions=np.zeros((HAND_JOINT_COUNT, 3), np.float32),
                  orientations=np.tile(np.array([0, 0, 0, 1], np.float32), (HAND_JOINT_COUNT, 1)),
                  radii=np.full(HAND_JOINT_COUNT, 0.01, np.float32))
    fields.update(changes)
    return HandJoints(**fields)


def test_float64_that_overflows_float32_is_refused_not_stored_as_inf():
    positions = np.zeros((HAND_JOINT_COUNT, 3), np.float64)
    positions[3, 1] = 1e39
    error = refused(lambda: hand(positions=positions))
    assert error["loc"] == ("positions",)
    assert "1e+39" in error["msg"] and "(3, 1)" in error["msg"] and "float32" in error["msg"]


def test_float64_that_fits_float32_is_accepted_rounded():
    positions = np.full((HAND_JOINT_COUNT, 3), 0.1, np.float64)
    stored = hand(positions=positions).positions
    assert stored.dtype == np.float32 and (stored == np.float32(0.1)).all()


def test_integers_that_do_not_fit_the_field_are_refused_not_wrapped():
    flags = np.full(HAND_JOINT_COUNT, 0xF, np.uint16)
    flags[4] = 1000
    error = refused(lambda: hand(location_flags=flags))
    assert error["loc"] == ("location_flags",)
    assert "1000" in error["msg"] and "(4,)" in error["msg"] and "uint8" in error["msg"]
    negative = refused(lambda: hand(location_flags=[-1] + [15] * (HAND_JOINT_COUNT - 1)))
    assert negative["loc"] == ("location_flags",) and "-1" in negative["msg"]


def test_integers_that_fit_are_accepted_from_wider_types_and_lists():
    assert hand(location_flags=np.full(HAND_JOINT_COUNT, 200, np.uint16)).location_flags.tolist() == \
        [200] * HAND_JOINT_COUNT
    assert hand(location_flags=[15] * HAND_JOINT_COUNT).location_flags.dtype == np.uint8


def test_big_endian_arrays_keep_their_values():
    positions = np.arange(HAND_JOINT_COUNT * 3, dtype=">f4").reshape(HAND_JOINT_COUNT, 3) / 100
    stored = hand(positions=positions).positions
    assert stored.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(stored, positions.astype("<f4"))


def test_a_big_endian_wire_array_is_read_in_its_byte_order():
    frame = two_handed_frame(3)
    envelope = wire(frame)
    radii = frame.left_hand.radii
    envelope["data"]["left_hand"]["radii"] = {"dtype": ">f4", "shape": [HAND_JOINT_COUNT],
                                              "data": radii.astype(">f4").tobytes()}
    again = decode(packed(envelope))
    np.testing.assert_array_equal(again.left_hand.radii, radii)
    assert again.left_hand.radii.dtype == np.dtype("<f4")


def test_an_unknown_wire_dtype_is_named_in_the_message():
    envelope = wire(two_handed_frame())
    envelope["data"]["left_hand"]["radii"]["dtype"] = "banana32"
    error = refused(lambda: decode(packed(envelope)))
    assert error["loc"] == ("left_hand", "radii")
    assert "'banana32'" in error["msg"] and "{dtype" not in error["msg"]


# --- D6: decode raises ValidationError for everything malformed -----------------------------


@pytest.mark.parametrize("envelope, loc", [
    ({"type": [1], "data": {}}, ("type",)),
    ({"type": [1]}, ("payload",)),
    ({"type": None, "data": {}}, ("type",)),
    ({"type": {"a": 1}, "data": {}}, ("type",)),
    ({"type": "Pose", "data": [1, 2]}, ()),
    ({"type": "Pose", "data": None}, ()),
    ([1, 2, 3], ("payload",)),
    (5, ("payload",)),
])
def test_decode_refuses_malformed_envelopes_with_a_validation_error(envelope, loc):
    error = refused(lambda: decode(packed(envelope)))
    assert error["loc"] == loc


@pytest.mark.parametrize("key, value, expected", [
    ("shape", 26, "shape"),
    ("shape", None, "shape"),
    ("shape", [[26]], "shape"),
    ("shape", [26.0], "shape"),
    ("shape", [-26], "shape"),
    ("shape", [True], "shape"),
    ("shape", [26, 1], "shape"),
    ("data", 5, "data"),
    ("data", None, "data"),
    ("data", [1, 2, 3], "data"),
    ("data", "not base64!", "base64"),
    ("dtype", 5, "dtype"),
    ("dtype", None, "dtype"),
    ("dtype", ["float32"], "dtype"),
    ("dtype", "object", "dtype"),
    ("dtype", "U4", "dtype"),
    ("dtype", "f4,f4", "dtype"),
])
def test_decode_refuses_malformed_wire_arrays_naming_the_field(key, value, expected):
    envelope = wire(two_handed_frame())
    envelope["data"]["left_hand"]["radii"][key] = value
    error = refused(lambda: decode(packed(envelope)))
    assert error["loc"] == ("left_hand", "radii")
    assert expected in error["msg"]


def test_decode_refuses_wire_arrays_with_missing_or_extra_keys():
    envelope = wire(two_handed_frame())
    del envelope["data"]["left_hand"]["radii"]["shape"]
    assert "lacks shape" in refused(lambda: decode(packed(envelope)))["msg"]
    envelope = wire(two_handed_frame())
    envelope["data"]["left_hand"]["radii"]["order"] = "F"
    assert "'order'" in refused(lambda: decode(packed(envelope)))["msg"]


@pytest.mark.parametrize("payload", ["a string", None, 5, [b"bytes"]])
def test_decode_refuses_payloads_that_are_not_bytes(payload):
    assert refused(lambda: decode(payload))["loc"] == ("payload",)


def test_decode_errors_are_still_value_errors_for_existing_callers():
    with pytest.raises(ValueError, match="unknown message type 'Banana'"):
        decode(packed({"type": "Banana", "data": {}}))


# --- D7: integer bounds ----------------------------------------------------------------------


def integer_fields():
    """(message type, field, lowest, highest) of every integer property of every message's JSON Schema
    (nested messages and optional fields included; an array's wire ``shape`` is bounded by its payload limit)."""

    def walk(node, owner, name):
        if isinstance(node, dict):
            if node.get("type") == "integer" and name != "shape":
                low = node.get("minimum", None if "exclusiveMinimum" not in node else node["exclusiveMinimum"] + 1)
                yield owner, name, low, node.get("maximum")
            for key, child in node.items():
                if key == "properties":
                    for prop, schema in child.items():
                        yield from walk(schema, owner, prop)
                elif key == "$defs":
                    for model, schema in child.items():
                        yield from walk(schema, model, None)
                elif key != "items" or name != "shape":
                    yield from walk(child, owner, name)
        elif isinstance(node, list):
            for child in node:
                yield from walk(child, owner, name)

    seen = set()
    for cls in MESSAGE_TYPES.values():
        for found in walk(cls.model_json_schema(), cls.__name__, None):
            if found[:2] not in seen:
                seen.add(found[:2])
                yield found


def test_every_integer_field_is_bounded_to_what_msgpack_carries():
    fields = list(integer_fields())
    assert {(owner, name) for owner, name, _, _ in fields} >= {
        ("TrackingFrame", "frame_id"), ("DisplayFrame", "world_frame_id"), ("DisplayFrame", "content_age_ns"),
        ("AudioChunk", "start_time_ns"), ("SessionEvent", "time_ns"), ("WorldFrameRequest", "request_id")}
    assert len(fields) == 18
    for owner, name, low, high in fields:
        assert low is not None and high is not None, f"{owner}.{name} is unbounded"
        assert 0 <= low and high <= UINT64_MAX, f"{owner}.{name}: [{low}, {high}]"
        if name.endswith("_ns"):
            assert high == INT64_MAX, f"{owner}.{name}: times are int64"


def test_a_2_to_the_70_frame_id_is_refused_and_the_largest_encodes():
    error = refused(lambda: world_frame(frame_id=2**70))
    assert error["loc"] == ("frame_id",) and error["input"] == 2**70
    largest = world_frame(frame_id=UINT64_MAX, request_id=UINT64_MAX, generated_for_time_ns=INT64_MAX)
    assert decode(encode(largest)).frame_id == UINT64_MAX


@pytest.mark.parametrize("field, value", [
    ("frame_id", -1), ("frame_id", UINT64_MAX + 1),
    ("sample_time_ns", INT64_MAX + 1), ("sample_time_ns", -5),
    ("predicted_display_time_ns", 2**70),
])
def test_tracking_frame_integers_out_of_range_are_refused(field, value):
    fields = dict(frame_id=0, sample_time_ns=0, predicted_display_time_ns=INT64_MAX, head=Pose())
    fields[field] = value
    error = refused(lambda: TrackingFrame(**fields))
    assert error["loc"] == (field,) and error["input"] == value


def test_out_of_range_integers_inside_a_decoded_message_are_refused():
    envelope = wire(two_handed_frame())
    envelope["data"]["sample_time_ns"] = UINT64_MAX  # msgpack carries it, an int64 time does not
    error = refused(lambda: decode(packed(envelope)))
    assert error["loc"] == ("sample_time_ns",)


def test_every_valid_message_with_extreme_integers_encodes():
    for message in all_messages():
        update = {}
        for _, name, _, high in (f for f in integer_fields() if f[0] == type(message).__name__):
            if getattr(message, name) is not None and name != "sample_rate_hz":
                update[name] = high
        if isinstance(message, TrackingFrame):
            update["sample_time_ns"] = update["predicted_display_time_ns"] = INT64_MAX
        extreme = type(message).model_validate({**message.model_dump(), **update})
        assert encode(decode(encode(extreme))) == encode(extreme)


# --- D8: order inside one request -------------------------------------------------------------


def test_world_frame_request_refuses_decreasing_frame_ids_naming_index_and_values():
    later_in_time = two_handed_frame(2).model_copy(update={"sample_time_ns": 9_000, "predicted_display_time_ns": 9_500})
    error = refused(lambda: WorldFrameRequest(session_id="s", request_id=0,
                                              tracking=[two_handed_frame(1), two_handed_frame(5), later_in_time]))
    assert error["loc"] == ("tracking",)
    assert "tracking[2].frame_id 2" in error["msg"] and "tracking[1].frame_id 5" in error["msg"]


def test_world_frame_request_refuses_repeated_frame_ids_and_times():
    first = two_handed_frame(4)
    same_id = first.model_copy(update={"sample_time_ns": first.sample_time_ns + 10,
                                       "predicted_display_time_ns": first.predicted_display_time_ns + 10})
    assert "frame_id 4" in refused(lambda: WorldFrameRequest(session_id="s", request_id=0,
                                                             tracking=[first, same_id]))["msg"]
    same_time = first.model_copy(update={"frame_id": 5})
    assert "sample_time_ns" in refused(lambda: WorldFrameRequest(session_id="s", request_id=0,
                                                                 tracking=[first, same_time]))["msg"]


def test_world_frame_request_order_is_checked_on_the_wire():
    request = WorldFrameRequest(session_id="s", request_id=0, tracking=[two_handed_frame(1), two_handed_frame(2)])
    envelope = wire(request)
    envelope["data"]["tracking"][1]["frame_id"] = 1
    assert refused(lambda: decode(packed(envelope)))["loc"] == ("tracking",)


def test_stream_order_remembers_only_accepted_frames():
    order = StreamOrder()
    order.check(two_handed_frame(1))
    with pytest.raises(ValidationError):
        order.check(two_handed_frame(1))
    assert order.last.frame_id == 1
    order.check(two_handed_frame(2))
    assert order.last.frame_id == 2


def test_integers_that_a_float_field_cannot_hold_exactly_are_refused():
    positions = np.zeros((HAND_JOINT_COUNT, 3), np.int32)
    positions[2, 0] = 16_777_217  # 2**24 + 1: float32 has 24 bits of mantissa
    error = refused(lambda: hand(positions=positions))
    assert error["loc"] == ("positions",) and "16777217" in error["msg"] and "(2, 0)" in error["msg"]
    positions[2, 0] = 16_777_216
    assert hand(positions=positions).positions[2, 0] == 16_777_216.0
