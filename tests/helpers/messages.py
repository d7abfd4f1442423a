"""One valid instance of every bus message type, for round-trip, schema and CLI tests."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from genxr.platform.messages import (
    AudioChunk,
    AvatarMotion,
    AvatarRequest,
    DisplayFrame,
    Pose,
    SessionEvent,
    WorldFrame,
    WorldFrameRequest,
)
from tests.helpers.tracking import two_handed_frame


def world_frame(**changes) -> WorldFrame:
    """A valid WorldFrame (64x64 black image) with ``changes`` applied to its fields."""
    fields = dict(session_id="s", request_id=0, frame_id=3, head=Pose(), generated_for_time_ns=5,
                  vertical_fov_deg=90.0, image=np.zeros((64, 64, 3), np.uint8))
    fields.update(changes)
    return WorldFrame(**fields)


def all_messages() -> list:
    """One message of each type in :data:`genxr.platform.messages.MESSAGE_TYPES`, every field set."""
    frame = two_handed_frame(4)
    audio = AudioChunk(speaker="user", start_time_ns=10, sample_rate_hz=16000,
                       samples=np.linspace(-1, 1, 320, dtype=np.float32))
    return [
        Pose(position=(0.1, 1.6, -0.2), orientation=(0.0, 0.7071068, 0.0, 0.7071068)),
        frame.left_hand,
        audio,
        frame.model_copy(update={"audio": audio}),
        WorldFrameRequest(session_id="s", request_id=1, tracking=[two_handed_frame(1), two_handed_frame(2)]),
        world_frame(image=np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)),
        AvatarRequest(session_id="s", request_id=2, time_ns=7, user_head=Pose(), user_audio=audio, eye_contact=1.5),
        AvatarMotion(session_id="s", request_id=2, start_time_ns=7, fps=30.0,
                     rotations_6d=np.random.default_rng(1).normal(size=(4, 22, 6)).astype(np.float32),
                     root_translation=np.zeros((4, 3), np.float32)),
        DisplayFrame(frame_id=9, display_time_ns=11, image=np.zeros((8, 8, 3), np.uint8), world_frame_id=3,
                     reprojection_deg=1.5, content_age_ns=40_000_000, stale=False),
        SessionEvent(session_id="s", time_ns=12, kind="tracking_lost", detail="left hand"),
    ]


def assert_same(a, b) -> None:
    """``a`` and ``b`` are the same message: same type, every field equal, arrays equal in dtype,
    shape and value (lists of messages or of arrays compared item by item)."""
    assert type(a) is type(b)
    for name in type(a).model_fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, list):
            assert len(x) == len(y), name
            for u, v in zip(x, y):
                assert_same(u, v) if isinstance(u, BaseModel) else _assert_same_array(u, v, name)
        elif isinstance(x, BaseModel):
            assert_same(x, y)
        elif isinstance(x, np.ndarray):
            _assert_same_array(x, y, name)
        else:
            assert x == y, name


def _assert_same_array(x: np.ndarray, y: np.ndarray, name: str) -> None:
    assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name
