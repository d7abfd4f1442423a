"""Every message that crosses the genxr bus: the one schema module.

Frames and units, used throughout genxr:

* Positions are metres, in the session's reference space (OpenXR convention: right-handed,
  +X right, +Y up, -Z forward; STAGE = floor level, LOCAL = head at start).
* Orientations are unit quaternions in (x, y, z, w) order, as OpenXR's ``XrQuaternionf``.
  A quaternion whose norm is within ``QUATERNION_TOLERANCE`` of 1 is accepted and
  renormalised; a norm further from 1 is rejected (it is a bug upstream, not noise).
* Times are integer nanoseconds on the one monotonic clock of :mod:`genxr.platform.clock`.
* Hand joints are the 26 joints of ``XR_EXT_hand_tracking`` in the spec's order
  (:data:`HAND_JOINT_NAMES`).

Messages are frozen pydantic v2 models; numpy payloads are typed fields
(:mod:`genxr.platform.arrays`) checked for dtype, shape, finiteness and size; images are at
least :data:`MIN_IMAGE_SIDE` pixels each way. Every integer is bounded to what msgpack
carries: ids are uint64 (:data:`Id`), times and durations non-negative int64 nanoseconds
(:data:`TimeNs`). A message that validates therefore encodes; every bad input - to a
constructor, ``model_validate`` or :func:`decode` - is a ``pydantic.ValidationError`` naming
the field and the value, never another exception. Bulk data
travels as msgpack (:func:`encode` / :func:`decode`, exact round trip); JSON
(``model_dump_json``) serves everything else and non-Python clients, whose JSON Schemas
``genxr schema`` writes.
"""

from __future__ import annotations

import math
from enum import IntFlag
from typing import Annotated, Any, Literal

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from genxr.platform.arrays import Array, to_wire
from genxr.platform.units import NS_PER_S

QUATERNION_TOLERANCE = 1e-3
"""Largest accepted | |q| - 1 |; inside it a quaternion is renormalised, outside rejected."""
UNIT_NORM_EPSILON = 1e-12
"""| |q| - 1 | up to which a pose's quaternion is kept as given: dividing by the norm leaves a few
ulps of error, so a renormalised quaternion must pass unchanged when it is validated again (decode)."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest encoded message :func:`decode` accepts (64 MiB)."""

HAND_JOINT_NAMES: tuple[str, ...] = (
    "palm", "wrist",
    "thumb_metacarpal", "thumb_proximal", "thumb_distal", "thumb_tip",
    "index_metacarpal", "index_proximal", "index_intermediate", "index_distal", "index_tip",
    "middle_metacarpal", "middle_proximal", "middle_intermediate", "middle_distal", "middle_tip",
    "ring_metacarpal", "ring_proximal", "ring_intermediate", "ring_distal", "ring_tip",
    "little_metacarpal", "little_proximal", "little_intermediate", "little_distal", "little_tip",
)
HAND_JOINT_COUNT = 26

MAX_AUDIO_CHUNK_SAMPLES = 48_000 * 10
"""Longest accepted audio chunk: ten seconds at 48 kHz."""

AVATAR_JOINT_COUNT = 22
"""Joints of the avatar's SMPL-compatible body skeleton (HumanML3D order)."""

Finite = Annotated[float, Field(allow_inf_nan=False)]

UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=0, le=UINT64_MAX)]
"""A frame or request id: an unsigned 64-bit integer, the largest msgpack carries."""
TimeNs = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A time or duration in integer nanoseconds on the monotonic clock: a non-negative int64."""

MIN_IMAGE_SIDE = 2
"""Least height and width of an image in pixels. H.264 video (yuv420p, :mod:`genxr.platform.video`)
needs at least 2x2, and so does the compositor's bilinear re-projection of a world frame (an empty
image divides by zero there)."""
MAX_IMAGE_BYTES = 4096 * 4096 * 3
"""Largest image payload: 4096x4096 RGB."""
Image = Annotated[np.ndarray, Array("uint8", (None, None, 3), max_bytes=MAX_IMAGE_BYTES,
                                    min_shape=(MIN_IMAGE_SIDE, MIN_IMAGE_SIDE, 3))]
"""An (H, W, 3) uint8 RGB image, at least :data:`MIN_IMAGE_SIDE` pixels each way and at most :data:`MAX_IMAGE_BYTES`."""


class LocationFlags(IntFlag):
    """Bits of OpenXR's ``XrSpaceLocationFlags`` (per hand joint: 0xF = fully tracked)."""

    ORIENTATION_VALID = 0x1
    POSITION_VALID = 0x2
    ORIENTATION_TRACKED = 0x4
    POSITION_TRACKED = 0x8


class Message(BaseModel):
    """Base of all bus messages: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


def _non_unit_error(field: str, value: Any, norm: float) -> PydanticCustomError:
    return PydanticCustomError(
        "non_unit_quaternion",
        "{field} {value} has norm {norm}; a unit quaternion (x, y, z, w) is required (tolerance {tol})",
        {"field": field, "value": str(list(value)), "norm": f"{norm:.6f}", "tol": QUATERNION_TOLERANCE},
    )


class Pose(Message):
    """A rigid pose: ``position`` in metres and ``orientation`` as a unit quaternion (x, y, z, w)."""

    position: tuple[Finite, Finite, Finite] = (0.0, 0.0, 0.0)
    orientation: tuple[Finite, Finite, Finite, Finite] = (0.0, 0.0, 0.0, 1.0)

    @field_validator("orientation")
    @classmethod
    def _unit(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        norm = math.sqrt(sum(v * v for v in value))
        if abs(norm - 1.0) > QUATERNION_TOLERANCE:
            raise _non_unit_error("orientation", value, norm)
        if abs(norm - 1.0) <= UNIT_NORM_EPSILON:  # unit already, as a renormalised one is: re-validation is exact
            return value
        return tuple(v / norm for v in value)  # type: ignore[return-value]

    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) float64 rotation taking vectors in this pose's frame into the parent frame."""
        x, y, z, w = self.orientation
        return np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])

    def matrix(self) -> np.ndarray:
        """(4, 4) float64 homogeneous transform from this pose's frame to the parent frame."""
        out = np.eye(4)
        out[:3, :3] = self.rotation_matrix()
        out[:3, 3] = self.position
        return out


class HandJoints(Message):
    """One hand's 26 ``XR_EXT_hand_tracking`` joints at one time, in :data:`HAND_JOINT_NAMES` order.

    ``positions`` (26, 3) metres and ``orientations`` (26, 4) quaternions (x, y, z, w) are
    in the reference space; ``radii`` (26,) metres; ``location_flags`` (26,) carries
    :class:`LocationFlags` bits per joint. ``is_active`` False means the runtime lost the
    hand; the joint values are then kept only for continuity and must not be trusted.
    Quaternions are checked for unit norm only where the joint's orientation is valid.
    """

    hand: Literal["left", "right"]
    is_active: bool
    location_flags: Annotated[np.ndarray, Array("uint8", (HAND_JOINT_COUNT,))]
    positions: Annotated[np.ndarray, Array("float32", (HAND_JOINT_COUNT, 3))]
    orientations: Annotated[np.ndarray, Array("float32", (HAND_JOINT_COUNT, 4))]
    radii: Annotated[np.ndarray, Array("float32", (HAND_JOINT_COUNT,))]

    @field_validator("radii")
    @classmethod
    def _non_negative(cls, value: np.ndarray) -> np.ndarray:
        if (value < 0).any():
            index = int(np.argmax(value < 0))
            raise PydanticCustomError(
                "negative_radius", "radius {value} of joint {index} ({name}) is negative",
                {"value": float(value[index]), "index": index, "name": HAND_JOINT_NAMES[index]},
            )
        return value

    @field_validator("orientations")
    @classmethod
    def _orientations_unit(cls, value: np.ndarray, info: ValidationInfo) -> np.ndarray:
        flags = info.data.get("location_flags")
        if flags is None:  # location_flags itself failed; its error is reported
            return value
        valid = (flags & LocationFlags.ORIENTATION_VALID) != 0
        norms = np.sqrt(np.einsum("ij,ij->i", value, value, dtype=np.float64))
        off = np.abs(norms - 1.0) * valid
        worst = int(np.argmax(off))
        if off[worst] > QUATERNION_TOLERANCE:
            raise _non_unit_error(f"joint {worst} ({HAND_JOINT_NAMES[worst]})",
                                  value[worst].tolist(), float(norms[worst]))
        if off[worst] > 1e-6:
            value = (value / np.where(valid, norms, 1.0)[:, None]).astype(np.float32)
            value.flags.writeable = False
        return value

    @property
    def tracked(self) -> np.ndarray:
        """(26,) bool: position and orientation both tracked (not merely inferred)."""
        both = LocationFlags.POSITION_TRACKED | LocationFlags.ORIENTATION_TRACKED
        return (self.location_flags & both) == both


class AudioChunk(Message):
    """Mono audio: ``samples`` (n,) float32 in [-1, 1] at ``sample_rate_hz``, first sample at ``start_time_ns``."""

    speaker: Literal["user", "agent"]
    start_time_ns: TimeNs
    sample_rate_hz: int = Field(gt=0, le=192_000)
    samples: Annotated[np.ndarray, Array("float32", (None,), max_bytes=MAX_AUDIO_CHUNK_SAMPLES * 4)]

    @field_validator("samples")
    @classmethod
    def _in_range(cls, value: np.ndarray) -> np.ndarray:
        if value.size and float(np.abs(value).max()) > 1.0:
            index = int(np.argmax(np.abs(value) > 1.0))
            raise PydanticCustomError(
                "sample_out_of_range", "sample {value} at index {index} is outside [-1, 1]",
                {"value": float(value[index]), "index": index},
            )
        return value

    @property
    def duration_ns(self) -> int:
        return round(self.samples.shape[0] * NS_PER_S / self.sample_rate_hz)


class TrackingFrame(Message):
    """What a tracking source reads once per display frame.

    ``sample_time_ns`` is when the poses were sampled and ``predicted_display_time_ns``
    when the frame built from them is expected on the display (OpenXR's
    ``predictedDisplayTime``); both on the monotonic clock. ``head`` is the headset
    (view) pose; ``head_tracked`` False while the headset lost tracking.
    """

    frame_id: Id
    sample_time_ns: TimeNs
    predicted_display_time_ns: TimeNs
    head: Pose
    head_tracked: bool = True
    left_hand: HandJoints | None = None
    right_hand: HandJoints | None = None
    audio: AudioChunk | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TrackingFrame:
        if self.predicted_display_time_ns < self.sample_time_ns:
            raise ValueError(
                f"predicted_display_time_ns {self.predicted_display_time_ns} is before "
                f"sample_time_ns {self.sample_time_ns}"
            )
        for side in ("left", "right"):
            hand = getattr(self, f"{side}_hand")
            if hand is not None and hand.hand != side:
                raise ValueError(f"{side}_hand holds a hand labelled {hand.hand!r}")
        return self


class WorldFrameRequest(Message):
    """Asks the world model for the next chunk of frames, conditioned on these tracking frames
    (oldest first: ``frame_id`` and ``sample_time_ns`` strictly increase, as :class:`StreamOrder` checks a stream)."""

    session_id: str = Field(min_length=1, max_length=128)
    request_id: Id
    tracking: list[TrackingFrame] = Field(min_length=1, max_length=64)

    @field_validator("tracking")
    @classmethod
    def _ordered(cls, frames: list[TrackingFrame]) -> list[TrackingFrame]:
        for index in range(1, len(frames)):
            before, after = frames[index - 1], frames[index]
            field = _not_increasing(before, after)
            if field is not None:
                raise PydanticCustomError(
                    "non_monotonic",
                    "tracking[{index}].{field} {value} does not increase past tracking[{previous_index}].{field} "
                    "{previous}; tracking frames are oldest first",
                    {"index": index, "field": field, "value": getattr(after, field),
                     "previous_index": index - 1, "previous": getattr(before, field)},
                )
        return frames


class WorldFrame(Message):
    """One generated frame: ``image`` (H, W, 3) uint8 RGB, as seen from ``head`` (the pose it was generated for).

    ``vertical_fov_deg`` is the pinhole camera's vertical field of view, which the
    compositor needs to re-project the image to a newer head pose.
    """

    session_id: str = Field(min_length=1, max_length=128)
    request_id: Id
    frame_id: Id = Field(description="tracking frame this image answers")
    head: Pose
    generated_for_time_ns: TimeNs
    vertical_fov_deg: float = Field(gt=0, lt=180)
    image: Image
    model: str = Field(default="", max_length=128)


class AvatarRequest(Message):
    """Asks the avatar for its next motion chunk, given the user's head (None while it is not
    tracked: the avatar holds the last position) and both speakers' audio since the last request."""

    session_id: str = Field(min_length=1, max_length=128)
    request_id: Id
    time_ns: TimeNs
    user_head: Pose | None = None
    user_audio: AudioChunk | None = None
    agent_audio: AudioChunk | None = None
    eye_contact: float | None = Field(default=None, ge=0.0, le=4.0, description="guidance scale of the gaze score")


class AvatarMotion(Message):
    """Avatar body motion: ``fps`` frames from ``start_time_ns``.

    ``rotations_6d`` (T, 22, 6) float32: local joint rotations, 6D representation (first two
    columns of the rotation matrix), HumanML3D joint order; ``root_translation`` (T, 3)
    float32 metres in the session's reference space.
    """

    session_id: str = Field(min_length=1, max_length=128)
    request_id: Id
    start_time_ns: TimeNs
    fps: float = Field(gt=0, le=1000)
    rotations_6d: Annotated[np.ndarray, Array("float32", (None, AVATAR_JOINT_COUNT, 6),
                                              min_shape=(1, AVATAR_JOINT_COUNT, 6))]
    root_translation: Annotated[np.ndarray, Array("float32", (None, 3), min_shape=(1, 3))]

    @model_validator(mode="after")
    def _same_length(self) -> AvatarMotion:
        if self.rotations_6d.shape[0] != self.root_translation.shape[0]:
            raise ValueError(
                f"rotations_6d has {self.rotations_6d.shape[0]} frames but root_translation has "
                f"{self.root_translation.shape[0]}"
            )
        return self


class DisplayFrame(Message):
    """What the compositor hands to the sinks for one display refresh.

    ``image`` (H, W, 3) uint8; ``world_frame_id`` is the tracking frame the shown world
    content was generated for (None before the first arrives), ``reprojection_deg`` the
    rotation the timewarp applied, ``content_age_ns`` how old that content is at display
    time, and ``stale`` True when it is older than the compositor's limit (a model stopped
    answering) or there is no content yet. With a headset's views, ``view_images`` holds one
    (H, W, 3) uint8 image per view in the runtime's view order (left eye first) and
    ``image`` is the first of them; None for a mono display.
    """

    frame_id: Id
    display_time_ns: TimeNs
    image: Image
    view_images: list[Image] | None = Field(default=None, min_length=1, max_length=4)
    world_frame_id: Id | None = None
    reprojection_deg: Finite = Field(default=0.0, ge=0.0)
    content_age_ns: TimeNs | None = None
    stale: bool = False


class SessionEvent(Message):
    """Something that happened to a session, for logs, the dashboard and study records."""

    session_id: str = Field(min_length=1, max_length=128)
    time_ns: TimeNs
    kind: Literal[
        "started", "stopped", "tracking_lost", "tracking_regained",
        "model_ready", "model_failed", "deadline_missed", "error",
    ]
    detail: str = Field(default="", max_length=4096)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (Pose, HandJoints, AudioChunk, TrackingFrame, WorldFrameRequest, WorldFrame,
                AvatarRequest, AvatarMotion, DisplayFrame, SessionEvent)
}


_ORDERED_FIELDS = ("frame_id", "sample_time_ns")


def _not_increasing(before: TrackingFrame, after: TrackingFrame) -> str | None:
    """The first of ``frame_id``, ``sample_time_ns`` that does not increase from ``before`` to ``after``."""
    for field in _ORDERED_FIELDS:
        if getattr(after, field) <= getattr(before, field):
            return field
    return None


class StreamOrder:
    """Rejects a stream's frame whose ``frame_id`` or ``sample_time_ns`` does not strictly
    increase past the previous accepted frame's: a ``ValidationError`` located at that field,
    naming both values. A rejected frame is not remembered, so the stream may go on.

    One instance per stream (a tracking source's output as the frame loop reads it, a
    recording being replayed); :class:`WorldFrameRequest` applies the same rule to its frames.
    """

    def __init__(self, stream: str = "tracking") -> None:
        self.stream = stream
        self._last: TrackingFrame | None = None

    @property
    def last(self) -> TrackingFrame | None:
        """The last frame accepted, None before the first."""
        return self._last

    def check(self, frame: TrackingFrame) -> TrackingFrame:
        last = self._last
        if last is not None:
            field = _not_increasing(last, frame)
            if field is not None:
                raise ValidationError.from_exception_data(
                    f"{self.stream} stream",
                    [InitErrorDetails(
                        type=PydanticCustomError(
                            "non_monotonic",
                            "{field} {value} does not increase past the previous frame's {previous}",
                            {"field": field, "value": getattr(frame, field), "previous": getattr(last, field)},
                        ),
                        loc=(field,),
                        input=getattr(frame, field),
                    )],
                )
        self._last = frame
        return frame


def _wire_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return to_wire(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(message: Message) -> bytes:
    """msgpack bytes of ``message``: ``{"type": name, "data": fields}``, arrays as raw buffers."""
    return msgpack.packb(
        {"type": type(message).__name__, "data": message.model_dump(mode="python")},
        default=_wire_default, use_bin_type=True,
    )


def _not_a_message(loc: str, kind: str, message: str, value: Any) -> ValidationError:
    return ValidationError.from_exception_data("genxr message", [InitErrorDetails(
        type=PydanticCustomError(kind, "{reason}", {"reason": message}), loc=(loc,), input=value)])


def decode(payload: bytes, expected: type[Message] | None = None) -> Message:
    """The message encoded in ``payload``.

    Anything malformed raises ``pydantic.ValidationError`` (a ``ValueError``) and nothing
    else: located at ``payload`` for bytes that are not a genxr message envelope (not
    bytes, over :data:`MAX_MESSAGE_BYTES`, not msgpack, not ``{"type", "data"}``), at
    ``type`` for an unknown type or one other than ``expected``, and at the offending
    field, with its value, for invalid content.
    """
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _not_a_message("payload", "message_payload", f"payload must be bytes, got {type(payload).__name__}",
                             type(payload).__name__)
    if len(payload) > MAX_MESSAGE_BYTES:
        raise _not_a_message("payload", "message_too_large",
                             f"message of {len(payload)} bytes exceeds MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}",
                             len(payload))
    try:
        envelope = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as err:  # msgpack's UnpackException/ValueError family, whatever the bytes provoke
        raise _not_a_message("payload", "message_payload", f"payload is not a genxr message (msgpack: {err})",
                             bytes(payload[:32])) from err
    if not isinstance(envelope, dict) or set(envelope) != {"type", "data"}:
        raise _not_a_message("payload", "message_envelope",
                             "payload is not a genxr message envelope {'type', 'data'}", repr(envelope)[:100])
    name = envelope["type"]
    cls = MESSAGE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _not_a_message("type", "unknown_message_type",
                             f"unknown message type {repr(name)[:100]}; known: {sorted(MESSAGE_TYPES)}", name)
    if expected is not None and cls is not expected:
        raise _not_a_message("type", "unexpected_message_type",
                             f"expected a {expected.__name__}, got a {cls.__name__}", name)
    return cls.model_validate(envelope["data"])
